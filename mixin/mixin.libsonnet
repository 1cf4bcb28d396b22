// powerbi-exporter's monitoring mixin, in the layout of kubernetes-mixin and node-mixin:
// _config (config.libsonnet), prometheusAlerts and grafanaDashboards.
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
