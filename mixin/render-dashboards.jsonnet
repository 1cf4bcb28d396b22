// The rendered dashboards, by their paths in the repository: `jsonnet -m DIR` writes them
// (render.sh). jsonnet's own JSON output, not std.manifestJsonEx: the C++ jsonnet evaluates
// that in jsonnet and takes seconds per dashboard.
local kubernetes = import 'kubernetes.libsonnet';
local mixin = import 'mixin.libsonnet';

local dashboards(dir, m) = {
  [dir + '/' + name]: m.grafanaDashboards[name]
  for name in std.objectFields(m.grafanaDashboards)
};

// Plain Prometheus and compose: `instance` is a stable host:port.
dashboards('dashboards', mixin) +
// The Prometheus Operator: `instance` is a pod IP, so the exporter is chosen by `service`.
dashboards('deploy/kubernetes/dashboards', kubernetes) +
dashboards('deploy/helm/powerbi-exporter/dashboards', kubernetes)
