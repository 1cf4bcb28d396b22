local g = import '../lib/grafana.libsonnet';
{
  grafanaDashboards+:: {
    'powerbi-security.json': g.dashboard(
      $._config,
      uid='powerbi-security',
      title='Power BI security & governance',
      description='Exports, publish-to-web, shares, permission and tenant changes, deletions and failures.',
      variables=[
        g.variable('workspace', 'Workspace id', 'label_values(powerbi_workspace_info{%(s)s}, workspace_id)'),
      ],
      panels=[
        g.panel('timeseries', 'Exports, downloads and prints', 'Events that take data out of Power BI, per interval.', 'short', [0, 0, 12, 8], [
          g.range('sum by (activity) (increase(powerbi_activity_events_total{activity=~"Export.*|Download.*|Print.*|AnalyzeInExcel.*|AnalyzedByExternalApplication",workspace_id=~"$workspace",%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
        g.panel('table', 'Reports exported most', 'Reports by export, download and print events over the selected range.', 'short', [12, 0, 12, 8], [
          g.table('topk(20, sum by (report_id, workspace_id) (increase(powerbi_report_events_total{activity=~"Export.*|Download.*|Print.*|AnalyzeInExcel.*|AnalyzedByExternalApplication",%(s)s}[$__range])) * on (report_id) group_left (report_name) powerbi_report_info{%(s)s}) * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s}'),
        ]),
        g.panel('table', 'Published to web', 'PublishToWebReport events per workspace over the selected range: public, anonymous links.', 'short', [0, 8, 12, 8], [
          g.table('sum by (workspace_id) (increase(powerbi_activity_events_total{activity="PublishToWebReport",%(s)s}[$__range])) * on (workspace_id) group_left (workspace_name) powerbi_workspace_info{%(s)s}'),
        ]),
        g.panel('timeseries', 'Shares', 'Share events per interval, by activity.', 'short', [12, 8, 12, 8], [
          g.range('sum by (activity) (increase(powerbi_activity_events_total{activity=~"Share.*",workspace_id=~"$workspace",%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
        g.panel('timeseries', 'Permission and access changes', 'Permission, membership and ownership changes per interval.', 'short', [0, 16, 12, 8], [
          g.range('sum by (activity) (increase(powerbi_activity_events_total{activity=~"UpdateWorkspaceAccess|UpdateFolderAccess|AddGroupMembers|DeleteGroupMembers|AddWorkspaceRoleViaAdminApi|UpdateWorkspaceRoleViaAdminApi|DeleteWorkspaceRoleViaAdminApi|AddAdminPersonalWorkspaceAccess|TakeOverDataset|TakeOverDatasource",%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
        g.panel('timeseries', 'Tenant setting changes', 'UpdatedAdminFeatureSwitch events per interval.', 'short', [12, 16, 12, 8], [
          g.range('sum(increase(powerbi_activity_events_total{activity="UpdatedAdminFeatureSwitch",%(s)s}[$__rate_interval]))', 'changes'),
        ]),
        g.panel('timeseries', 'Deletions', 'Delete events per interval: bursts stand out.', 'short', [0, 24, 12, 8], [
          g.range('sum by (activity) (increase(powerbi_activity_events_total{activity=~"Delete.*",%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
        g.panel('timeseries', 'Failed activities', 'Share of events with IsSuccess=false, by activity.', 'percentunit', [12, 24, 12, 8], [
          g.range('sum by (activity) (rate(powerbi_activity_events_failed_total{%(s)s}[$__rate_interval])) / sum by (activity) (rate(powerbi_activity_events_total{%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
        g.panel('table', 'Top exporting users (pseudonyms)', 'Users with the most exports, downloads, prints and analyze-in-Excel events over the range, from powerbi_user_sensitive_events_total. Labels are keyed pseudonyms unless --users.label=plain: resolve one by hashing a known UPN with the same key, not from Prometheus.', 'short', [0, 32, 12, 10], [
          g.table('topk(20, sum by (user) (increase(powerbi_user_sensitive_events_total{activity=~"Export.*|Download.*|Print.*|AnalyzeInExcel.*|AnalyzedByExternalApplication",%(s)s}[$__range])))'),
        ]),
        g.panel('timeseries', 'External shares', "Shares with at least one recipient outside the tenant's domains (powerbi_external_shares_total), by activity.", 'short', [12, 32, 12, 10], [
          g.range('sum by (activity) (increase(powerbi_external_shares_total{workspace_id=~"$workspace",%(s)s}[$__rate_interval]))', '{{activity}}'),
        ]),
      ],
    ),
  },
}
