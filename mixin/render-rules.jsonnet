// The rendered rule files, by their paths in the repository: `jsonnet -S -m DIR` writes them
// (render.sh). The copies are checked in because Helm and kustomize cannot read files outside
// their folders.
local mixin = import 'mixin.libsonnet';

local header = '# Generated from mixin/ by mixin/render.sh: edit the mixin, not this file.\n';

// Once: std.manifestYamlDoc is slow in the C++ jsonnet.
local rules = std.manifestYamlDoc(mixin.prometheusAlerts, indent_array_in_object=true, quote_keys=false);

local indented(text, by) = std.join('\n', [
  if line == '' then line else by + line
  for line in std.split(text, '\n')
]);

{
  'deploy/prometheus/rules/alerts.yaml': header + rules,
  'deploy/helm/powerbi-exporter/rules/alerts.yaml': header + rules,
  'deploy/kubernetes/prometheusrule.yaml': header + |||
    apiVersion: monitoring.coreos.com/v1
    kind: PrometheusRule
    metadata:
      name: powerbi-exporter
      labels:
        app.kubernetes.io/name: powerbi-exporter
        release: kube-prometheus-stack
    spec:
  ||| + indented(rules, '  '),
}
