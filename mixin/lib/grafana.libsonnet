// Small helpers for Grafana dashboard JSON. Grafonnet is not used: it is fetched from GitHub
// with jsonnet-bundler, and no package registry (Debian, npm, PyPI) ships it.
//
// Panel expressions are written with two placeholders, filled in by dashboard():
//   %(s)s  the selector of the chosen exporter: job, tenant and instance variables;
//   %(i)s  the label that names one exporter (config instanceLabel), for legends.
local datasource = { type: 'prometheus', uid: '${datasource}' };

local target(expr, legend, table) = {
  expr: expr,
  legendFormat: legend,
  instant: table,
  range: !table,
} + (if table then { format: 'table' } else {});

local variable(name, label, query, includeAll=true) = {
  name: name,
  label: label,
  type: 'query',
  datasource: datasource,
  query: { query: query, refId: name },
  definition: query,
  // On time range change, so an exporter that came or went shows up without a reload.
  refresh: 2,
  includeAll: includeAll,
  multi: includeAll,
  sort: 1,
  hide: 0,
} + (
  // All matches every value, and also series without the label (a regex .* matches the empty
  // value), so the tenant variable works whether or not the series carry a tenant label.
  if includeAll then { allValue: '.*', current: { selected: true, text: 'All', value: '$__all' } }
  else { current: {} }
);

{
  // A range query; legend may use %(i)s.
  range(expr, legend=''):: target(expr, legend, false),
  // An instant query shown as a table.
  table(expr):: target(expr, '', true),

  panel(type, title, description, unit, pos, targets):: {
    type: type,
    title: title,
    description: description,
    datasource: datasource,
    targets: targets,
    gridPos: { x: pos[0], y: pos[1], w: pos[2], h: pos[3] },
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {},
  },

  // A variable of the chosen exporter's label values; query may use %(s)s.
  variable(name, label, query):: { name: name, label: label, query: query },

  dashboard(config, uid, title, description, variables, panels)::
    local fill = {
      s: '%s=~"$job",%s=~"$tenant",%s=~"$instance"' % [
        'job',
        config.tenantLabel,
        config.instanceLabel,
      ],
      i: config.instanceLabel,
    };
    local sel = config.powerbiExporterSelector;
    {
      id: null,
      uid: uid,
      title: title,
      description: description,
      tags: config.dashboardTags + [config.dashboardLinkTag],
      timezone: config.dashboardTimezone,
      editable: true,
      graphTooltip: 1,
      schemaVersion: 39,
      version: 1,
      refresh: config.dashboardRefresh,
      time: { from: config.dashboardFrom, to: 'now' },
      templating: {
        list: [
          { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
          // As node-mixin: the jobs that the config's selector allows, one at a time.
          variable('job', 'Job', 'label_values(powerbi_exporter_build_info{%s}, job)' % sel, includeAll=false),
          variable('tenant', 'Tenant', 'label_values(powerbi_exporter_build_info{job=~"$job"}, %s)' % config.tenantLabel),
          variable('instance', 'Exporter', 'label_values(powerbi_exporter_build_info{job=~"$job",%s=~"$tenant"}, %s)' % [config.tenantLabel, config.instanceLabel]),
        ] + [
          variable(v.name, v.label, v.query % fill)
          for v in variables
        ],
      },
      annotations: {
        list: [{
          name: 'Failed polls',
          datasource: datasource,
          enable: true,
          iconColor: 'red',
          // powerbi_up is 0 after a poll that did not read every planned hour to its end.
          expr: 'powerbi_up{%(s)s} == 0' % fill,
          step: '1m',
          titleFormat: 'Poll failed',
          textFormat: '{{%(i)s}}: the last poll did not read every planned hour; see the exporter health dashboard and log' % fill,
        }],
      },
      // As kubernetes-mixin: a menu of every dashboard carrying the mixin's tag, keeping the
      // time range and the variables.
      links: [{
        title: 'Power BI dashboards',
        type: 'dashboards',
        tags: [config.dashboardLinkTag],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
        targetBlank: false,
      }],
      panels: [
        panels[n] {
          id: n + 1,
          targets: [
            panels[n].targets[t] {
              refId: std.char(std.codepoint('A') + t),
              expr: super.expr % fill,
              legendFormat: super.legendFormat % fill,
            }
            for t in std.range(0, std.length(panels[n].targets) - 1)
          ],
        }
        for n in std.range(0, std.length(panels) - 1)
      ],
    },
}
