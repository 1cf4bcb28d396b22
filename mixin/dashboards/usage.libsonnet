local g = import '../lib/grafana.libsonnet';
{
  grafanaDashboards+:: {
    'powerbi-usage.json': g.dashboard(
      $._config,
      uid='powerbi-usage',
      title='Power BI usage & adoption',
      description='Report views, activity mix and active users from the Power BI activity log.',
      variables=[
        g.variable('workspace', 'Workspace id', 'label_values(powerbi_workspace_info{%(s)s}, workspace_id)'),
        g.variable('activity', 'Activity', 'label_values(powerbi_activity_events_total{%(s)s}, activity)'),
      ],
      panels=[
        g.panel('table', 'Most viewed reports', 'Reports with the most ViewReport events over the selected range; names joined from powerbi_report_info and powerbi_workspace_info.', 'short', [0, 0, 24, 10], [
          g.table('topk(20, sum by (report_id, workspace_id) (increase(powerbi_report_events_total{activity="ViewReport",%(s)s,workspace_id=~"$workspace"}[$__range])) * on (report_id) group_left (report_name) powerbi_report_info{%(s)s}) * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s}'),
        ]),
        // A minimum interval of two backfill steps (5m): zoomed in on backfilled days, an
        // increase over $__rate_interval needs two samples in its window.
        g.panel('timeseries', 'Views over time', 'ViewReport events per interval (at least 10 minutes, so backfilled history shows at every zoom).', 'short', [0, 10, 12, 8], [
          g.range('sum(increase(powerbi_activity_events_total{activity="ViewReport",%(s)s,workspace_id=~"$workspace"}[$__rate_interval]))', 'views'),
        ]) + { interval: '10m' },
        g.panel('bargauge', 'Views per workspace', 'ViewReport events per workspace over the selected range.', 'short', [12, 10, 12, 8], [
          g.table('sort_desc(sum by (workspace_id) (increase(powerbi_activity_events_total{activity="ViewReport",%(s)s}[$__range])) * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s})'),
        ]),
        g.panel('piechart', 'Activity mix', 'Events by activity over the selected range.', 'short', [0, 18, 12, 8], [
          g.table('sum by (activity) (increase(powerbi_activity_events_total{activity=~"$activity",%(s)s}[$__range]))'),
        ]),
        g.panel('stat', 'Active users', 'Distinct users with at least one event in the last day, 7 days and 28 days.', 'short', [12, 18, 12, 8], [
          g.range('powerbi_active_users{window="1d",%(s)s}', '1 day'),
          g.range('powerbi_active_users{window="7d",%(s)s}', '7 days'),
          g.range('powerbi_active_users{window="28d",%(s)s}', '28 days'),
        ]),
        g.panel('timeseries', 'Active users trend', 'Distinct users per window over time.', 'short', [0, 26, 12, 8], [
          g.range('powerbi_active_users{%(s)s}', '{{window}}'),
        ]),
        g.panel('stat', 'Workspaces and reports with activity', 'Workspaces and reports with at least one event over the selected range.', 'short', [12, 26, 12, 8], [
          g.table('count(sum by (workspace_id) (increase(powerbi_activity_events_total{workspace_id!="",%(s)s}[$__range])) > 0)'),
          g.table('count(sum by (report_id) (increase(powerbi_report_events_total{%(s)s}[$__range])) > 0)'),
        ]),
        g.panel('bargauge', 'Top workspaces by active users', 'Distinct users per workspace over the last 7 days.', 'short', [0, 34, 24, 8], [
          g.table('topk(10, powerbi_workspace_active_users{window="7d",%(s)s} * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s})'),
        ]),
        g.panel('table', 'Reports by distinct viewers (7 days)', 'Distinct users who opened each report in the last 7 UTC days (powerbi_report_viewers: exact up to 128 viewers per report-day, else a HyperLogLog estimate within about 5%).', 'short', [0, 42, 12, 10], [
          g.table('topk(20, powerbi_report_viewers{window="7d",%(s)s} * on (report_id) group_left (report_name, workspace_id) powerbi_report_info{%(s)s})'),
        ]),
        g.panel('table', 'Least recently viewed reports', "Days since each report was last opened (powerbi_report_last_view_timestamp_seconds); reports never viewed since the exporter's state began are not listed. A report past 30 days is a candidate for clean-up.", 'd', [12, 42, 12, 10], [
          g.table('topk(20, (time() - powerbi_report_last_view_timestamp_seconds{%(s)s}) / 86400) * on (report_id) group_left (report_name, workspace_id) powerbi_report_info{%(s)s}'),
        ]),
        g.panel('stat', 'Reports not viewed for 30 days', "Reports whose last view is more than 30 days old (only reports viewed at least once since the exporter's state began; the inventory adds reports never viewed).", 'short', [0, 52, 12, 6], [
          g.table('count((time() - powerbi_report_last_view_timestamp_seconds{%(s)s}) > 30 * 86400) or vector(0)'),
        ]),
        g.panel('table', 'New activities (schema drift)', 'Activities by the time their first event was seen, newest first: a recent one is an activity the API started sending.', 'dateTimeAsIso', [12, 52, 12, 6], [
          g.table('topk(10, powerbi_activity_first_seen_timestamp_seconds{%(s)s})'),
        ]),
        g.panel('table', 'Unused reports by workspace (inventory)', 'Reports of the inventory (--inventory.enabled) without a view in the last 28 days, by workspace; reports that never had any event are included, which the activity log alone cannot show.', 'short', [0, 58, 24, 8], [
          g.table('sort_desc(sum by (workspace_id) (powerbi_reports{state="unused",%(s)s}) * on (workspace_id) group_left (workspace_name, type) powerbi_workspace_info{%(s)s})'),
        ]),
      ],
    ),
  },
}
