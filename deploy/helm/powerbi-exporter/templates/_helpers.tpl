{{- define "powerbi-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "powerbi-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "powerbi-exporter.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "powerbi-exporter.labels" -}}
app.kubernetes.io/name: {{ include "powerbi-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "powerbi-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "powerbi-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "powerbi-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "powerbi-exporter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}


{{- /* Non-empty when a CA bundle is mounted (a ConfigMap or a Secret). */ -}}
{{- define "powerbi-exporter.caBundle" -}}
{{- if or .Values.caBundle.configMap .Values.caBundle.secret -}}true{{- end -}}
{{- end -}}

{{- /* The port of otlp.endpoint: its own, else 443 for https, else the protocol's default. */ -}}
{{- define "powerbi-exporter.otlpPort" -}}
{{- $url := urlParse .Values.otlp.endpoint -}}
{{- $hostPort := splitList ":" $url.host -}}
{{- if gt (len $hostPort) 1 -}}{{ last $hostPort }}
{{- else if eq $url.scheme "https" -}}443
{{- else if eq .Values.otlp.protocol "grpc" -}}4317
{{- else -}}4318
{{- end -}}
{{- end -}}
