// The mixin as rendered for Kubernetes (the Helm chart's and kustomize's dashboards): the
// Prometheus Operator sets `instance` to the pod's IP and port, which a restart changes, so a
// dashboard saved or linked with one exporter selected would show nothing afterwards. The
// `service` label it adds names the Service, which stays (one per release or overlay, i.e.
// per tenant).
(import 'mixin.libsonnet') + {
  _config+:: {
    instanceLabel: 'service',
  },
}
