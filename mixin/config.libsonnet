// The mixin's settings: every selector, label and link of the rendered rules and dashboards
// comes from here. Override them as kube-prometheus users do:
//   (import 'powerbi-exporter/mixin/mixin.libsonnet') + { _config+:: { powerbiExporterSelector: 'job="powerbi"' } }
{
  _config+:: {
    // Selects the exporter's series in every alert (and which jobs the dashboards offer). The
    // shipped scrape configurations and ServiceMonitors all produce job="powerbi-exporter".
    powerbiExporterSelector: 'job="powerbi-exporter"',

    // The target label that tells tenants apart, when the scrape configuration adds one (one
    // exporter per tenant). The dashboards' tenant variable reads it; series without it still
    // match the variable's "All".
    tenantLabel: 'tenant',

    // The label the dashboards select one exporter by. `instance` is host:port, stable for a
    // static target; under the Prometheus Operator it is the pod's IP and changes with every
    // restart, so the Kubernetes rendering (kubernetes.libsonnet) uses `service` instead.
    instanceLabel: 'instance',

    // The labels the alerts that aggregate (sum by, count by) keep: the exporter, and the tenant
    // where the scrape configuration adds it (a label no series has is simply left out).
    alertGroupLabels: ['instance', self.tenantLabel],

    // Where each alert's runbook entry is: %s is the entry's anchor (the alert name in lower
    // case, as GitHub and most Markdown renderers make heading anchors). Point it at the copy
    // of deploy/prometheus/README.md your responders can open.
    runbookURLPattern: 'https://github.com/powerbi-exporter/powerbi-exporter/blob/main/deploy/prometheus/README.md#%s',

    // Semantic models: PowerBISemanticModelRefreshFailing fires when one model's refreshes
    // failed at least this many times within the window; PowerBISemanticModelNotRefreshed when
    // a model whose reports were viewed within the viewed window has had no successful refresh
    // for longer than the age (hours). Set the age above the slowest refresh schedule you keep.
    semanticModelRefreshFailures: 3,
    semanticModelRefreshFailureWindow: '6h',
    semanticModelMaxRefreshAgeHours: 24,
    semanticModelViewedWindow: '1d',

    // Dashboards: tags (the links between the dashboards follow dashboardLinkTag), time zone,
    // refresh and default range.
    dashboardTags: ['powerbi', 'prometheus-exporter'],
    dashboardLinkTag: 'powerbi-exporter',
    dashboardTimezone: 'utc',
    dashboardRefresh: '1m',
    dashboardFrom: 'now-7d',
  },
}
