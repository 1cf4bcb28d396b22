local g = import '../lib/grafana.libsonnet';

// Joins an item's name (and workspace) from powerbi_item_info: ids label the counters, names
// live only in the info family.
local named(expr, type) = '%s * on (item_id) group_left (item_name) max by (item_id, item_name) (powerbi_item_info{item_type="%s",%%(s)s})' % [expr, type];
local namedAny(expr) = '%s * on (item_id, item_type) group_left (item_name) max by (item_id, item_type, item_name) (powerbi_item_info{%%(s)s})' % expr;

// The item types that are Fabric items: everything but Power BI's own.
local fabric = 'item_type!~"report|dashboard|semantic_model|dataflow|app"';

{
  grafanaDashboards+:: {
    'powerbi-items.json': g.dashboard(
      $._config,
      uid='powerbi-items',
      title='Power BI semantic models and items',
      description='Semantic models (use through reports, refreshes and their failures), dashboards, dataflows, apps and Fabric items from the Power BI activity log.',
      variables=[
        g.variable('workspace', 'Workspace id', 'label_values(powerbi_item_info{%(s)s}, workspace_id)'),
        g.variable('item_type', 'Item type', 'label_values(powerbi_item_events_total{%(s)s}, item_type)'),
      ],
      panels=[
        g.panel('table', 'Most used semantic models', 'Views of reports built on each semantic model over the selected range (powerbi_semantic_model_report_views_total: ViewReport events whose DatasetId names the model).', 'short', [0, 0, 12, 10], [
          g.table(named('topk(20, sum by (item_id, workspace_id) (increase(powerbi_semantic_model_report_views_total{%(s)s,workspace_id=~"$workspace"}[$__range])))', 'semantic_model')),
        ]),
        g.panel('table', 'Semantic models by their own events', 'Events about each semantic model itself (refreshes, edits, Analyze in Excel, takeovers) over the selected range.', 'short', [12, 0, 12, 10], [
          g.table(named('topk(20, sum by (item_id, workspace_id) (increase(powerbi_item_events_total{item_type="semantic_model",%(s)s,workspace_id=~"$workspace"}[$__range])))', 'semantic_model')),
        ]),
        g.panel('timeseries', 'Refresh failures per model', 'Failed RefreshDataset events per semantic model and interval; a model failing again and again stands out as its own line.', 'short', [0, 10, 12, 8], [
          g.range(named('sum by (item_id) (increase(powerbi_item_events_failed_total{item_type="semantic_model",activity="RefreshDataset",%(s)s,workspace_id=~"$workspace"}[$__rate_interval]))', 'semantic_model'), '{{item_name}}'),
        ]),
        g.panel('table', 'Models with failed refreshes', 'Failed RefreshDataset events per semantic model over the selected range, most failures first (models that ever failed; 0 when none failed in the range).', 'short', [12, 10, 12, 8], [
          g.table(named('topk(20, sum by (item_id, workspace_id) (increase(powerbi_item_events_failed_total{item_type="semantic_model",activity="RefreshDataset",%(s)s,workspace_id=~"$workspace"}[$__range])))', 'semantic_model')),
        ]),
        g.panel('table', 'Models not refreshed for longest', "Hours since each semantic model's last successful refresh (powerbi_semantic_model_last_refresh_timestamp_seconds{outcome=\"success\"}), longest first; models whose refreshes were never seen since the exporter's state began are not listed.", 'h', [0, 18, 12, 10], [
          g.table(named('topk(20, (time() - max by (item_id) (powerbi_semantic_model_last_refresh_timestamp_seconds{outcome="success",%(s)s})) / 3600)', 'semantic_model')),
        ]),
        g.panel('table', 'Last refresh failure per model', 'When each semantic model last failed a refresh, newest first; compare with its last success in the panel beside.', 'dateTimeAsIso', [12, 18, 12, 10], [
          g.table(named('topk(20, max by (item_id) (powerbi_semantic_model_last_refresh_timestamp_seconds{outcome="failure",%(s)s}) * 1000)', 'semantic_model')),
        ]),
        g.panel('piechart', 'Fabric item activity by kind', 'Events about Fabric items (Lakehouse, Notebook, Warehouse, DataPipeline, …) by item type over the selected range.', 'short', [0, 28, 12, 8], [
          g.table('sum by (item_type) (increase(powerbi_item_events_total{' + fabric + ',%(s)s,workspace_id=~"$workspace"}[$__range]))'),
        ]),
        g.panel('timeseries', 'Fabric item activity over time', 'Events about Fabric items per kind and activity (ReadArtifact, RunArtifact, UpdateArtifact, ShareArtifact, …) per interval.', 'short', [12, 28, 12, 8], [
          g.range('sum by (item_type, activity) (increase(powerbi_item_events_total{' + fabric + ',%(s)s,workspace_id=~"$workspace"}[$__rate_interval]))', '{{item_type}} {{activity}}'),
        ]),
        g.panel('table', 'Most active items', 'Items of the chosen types with the most events over the selected range, with their names.', 'short', [0, 36, 24, 10], [
          g.table(namedAny('topk(20, sum by (item_id, item_type, workspace_id) (increase(powerbi_item_events_total{item_type=~"$item_type",%(s)s,workspace_id=~"$workspace"}[$__range])))')),
        ]),
        g.panel('timeseries', 'Events by item type', 'Events per item type and interval: reports, dashboards, semantic models, dataflows, apps and each Fabric kind.', 'short', [0, 46, 12, 8], [
          g.range('sum by (item_type) (increase(powerbi_item_events_total{item_type=~"$item_type",%(s)s,workspace_id=~"$workspace"}[$__rate_interval]))', '{{item_type}}'),
        ]),
        g.panel('stat', 'Failed item events', 'Share of events about items of the chosen types that failed over the selected range.', 'percentunit', [12, 46, 12, 8], [
          g.table('sum(increase(powerbi_item_events_failed_total{item_type=~"$item_type",%(s)s,workspace_id=~"$workspace"}[$__range])) / sum(increase(powerbi_item_events_total{item_type=~"$item_type",%(s)s,workspace_id=~"$workspace"}[$__range]))'),
        ]),
        g.panel('bargauge', 'Items used and unused (inventory)', 'Items of the inventory (--inventory.enabled) by type: used (an event in the last 28 days) and unused, which the activity log alone cannot show.', 'short', [0, 54, 12, 8], [
          g.table('sort_desc(sum by (item_type, state) (powerbi_items{%(s)s,workspace_id=~"$workspace"}))'),
        ]),
        g.panel('table', 'Unused items by workspace (inventory)', 'Inventory items without an event in the last 28 days, by workspace and type: candidates for clean-up.', 'short', [12, 54, 12, 8], [
          g.table('sort_desc(sum by (workspace_id, item_type) (powerbi_items{state="unused",%(s)s,workspace_id=~"$workspace"}) * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s})'),
        ]),
      ],
    ),
  },
}
