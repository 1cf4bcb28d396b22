// The alert rules. Each has a runbook entry in deploy/prometheus/README.md (runbook_url points
// at it) and promtool unit tests in deploy/prometheus/rules/alerts.test.yaml. Expressions say
// %(s)s where the exporter's selector (config powerbiExporterSelector) goes: every series an
// alert reads is selected by it; aggregations keep %(by)s (config alertGroupLabels), so an
// alert still names the exporter and, where the scrape adds one, the tenant.
// What a counter gained over the window: its value less its value one window ago, or less 0
// when it did not exist then (a series is created by its first event).
local since(counter, window) = '(%s - (%s offset %s or 0 * %s))' % [counter, counter, window, counter];

local rules(config) = {
  'powerbi-exporter-health': [
    {
      alert: 'PowerBIExporterDown',
      expr: 'up{%(s)s} == 0',
      'for': '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'powerbi-exporter is not being scraped.',
        description: 'Prometheus could not scrape {{ $labels.instance }} for 5 minutes; Power BI activity metrics are not updated.',
      },
    },
    {
      alert: 'PowerBIExporterAbsent',
      expr: 'absent(up{%(s)s})',
      'for': '10m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Prometheus has no powerbi-exporter target at all.',
        description: 'No target of %s has existed for 10 minutes (the exporter was removed, or its ServiceMonitor or scrape configuration no longer finds it), so PowerBIExporterDown cannot fire.' % config.powerbiExporterSelector,
      },
    },
    {
      alert: 'PowerBIActivityPollFailing',
      expr: 'powerbi_up{%(s)s} == 0',
      'for': '30m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Polls of the Power BI activity log are failing.',
        description: "The last polls of {{ $labels.instance }} did not read every planned hour for 30 minutes; see the exporter's log and powerbi_api_requests_total.",
      },
    },
    {
      alert: 'PowerBIActivityNoSuccessfulPoll',
      expr: 'time() - powerbi_last_poll_success_timestamp_seconds{%(s)s} > 3600',
      'for': '10m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No complete poll of the Power BI activity log for over an hour.',
        description: 'The last complete poll of {{ $labels.instance }} was more than an hour ago; events are late and may be lost after the lookback.',
      },
    },
    {
      alert: 'PowerBIActivityLagHigh',
      expr: 'time() - powerbi_events_watermark_timestamp_seconds{%(s)s} > 4 * 3600',
      'for': '30m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The newest counted Power BI event is more than 4 hours old.',
        description: 'On {{ $labels.instance }} the newest event counted is more than 4 hours old; normal lag is 30–60 minutes (quiet nights aside).',
      },
    },
    {
      alert: 'PowerBIApiThrottled',
      expr: 'increase(powerbi_api_throttled_total{%(s)s}[1h]) > 0',
      'for': '1h',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The Power BI API has been throttling the exporter for an hour.',
        description: "{{ $labels.instance }} received 429 answers during the last 2 hours; other tools may be using the tenant's 200 requests per hour.",
      },
    },
    {
      alert: 'PowerBIApiBudgetExhausted',
      expr: 'powerbi_api_budget_remaining{%(s)s} == 0',
      'for': '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: "The exporter's request budget is used up.",
        description: '{{ $labels.instance }} has no requests left in the current hour for 15 minutes; raise --powerbi.max-requests-per-hour (at most 200) or shorten --powerbi.lookback.',
      },
    },
    {
      alert: 'PowerBIAuthFailing',
      expr: 'sum by (%(by)s) (increase(powerbi_auth_errors_total{%(s)s}[15m])) > 0',
      'for': '15m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'The exporter cannot get Entra ID tokens.',
        description: '{{ $labels.instance }} had failing token requests for 15 minutes; see powerbi_auth_errors_total{reason} and the log (secret expired? wrong client id?).',
      },
    },
    {
      alert: 'PowerBICredentialExpiringSoon',
      expr: 'powerbi_credential_expiry_timestamp_seconds{kind="certificate",%(s)s} - time() < 14 * 86400',
      'for': '1h',
      labels: { severity: 'warning' },
      annotations: {
        summary: "The exporter's client certificate expires within 14 days.",
        description: 'The certificate of {{ $labels.instance }} expires within 14 days; upload a new one to the app registration and rotate the file.',
      },
    },
    {
      alert: 'PowerBIEventsRejected',
      expr: 'sum by (%(by)s) (increase(powerbi_events_rejected_total{%(s)s}[1h])) > 0',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Power BI events were rejected.',
        description: '{{ $labels.instance }} skipped malformed events in the last hour; see powerbi_events_rejected_total{reason}.',
      },
    },
    {
      alert: 'PowerBISeriesDropped',
      expr: 'sum by (%(by)s, family) (increase(powerbi_series_dropped_total{%(s)s}[1h])) > 0',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A metric family hit its series cap.',
        description: '{{ $labels.family }} on {{ $labels.instance }} sends new label sets to its __other__ series; raise --limits.max-series if that is unexpected.',
      },
    },
    {
      alert: 'PowerBILookbackSweepStale',
      expr: 'powerbi_lookback_sweep_age_seconds{%(s)s} > 6 * 3600',
      'for': '30m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Re-reads of older hours are running late, so late events are found late.',
        description: 'A re-read of an hour of {{ $labels.instance }} has waited over 6 hours past its age; the request budget is too small for the backlog.',
      },
    },
    {
      alert: 'PowerBIForwardingStalled',
      expr: 'powerbi_forward_backlog_events{%(s)s} > 0 and on (instance, sink) increase(powerbi_forwarded_events_total{%(s)s}[15m]) == 0',
      'for': '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Raw events are not reaching a forwarding destination.',
        description: 'The {{ $labels.sink }} sink of {{ $labels.instance }} has a backlog and delivered nothing for 30 minutes; see powerbi_forward_errors_total and the log.',
      },
    },
    {
      alert: 'PowerBIForwardedEventsDropped',
      expr: 'sum by (%(by)s, sink, reason) (increase(powerbi_forward_dropped_events_total{%(s)s}[1h])) > 0',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A forwarding sink gave events up.',
        description: 'The {{ $labels.sink }} sink of {{ $labels.instance }} dropped events ({{ $labels.reason }}) in the last hour: they are counted in the metrics but missing at the destination.',
      },
    },
    {
      alert: 'PowerBIOtlpPushFailing',
      expr: 'increase(powerbi_otlp_export_errors_total{%(s)s}[10m]) > 0',
      'for': '20m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'OTLP metric pushes are failing.',
        description: '{{ $labels.instance }} could not push metrics to the OpenTelemetry Collector for 20 minutes; the next successful push carries the cumulative values.',
      },
    },
    {
      alert: 'PowerBIStateNotSaved',
      expr: 'sum by (%(by)s, reason) (increase(powerbi_state_save_errors_total{%(s)s}[15m])) > 0',
      'for': '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The exporter cannot save its state.',
        description: '{{ $labels.instance }} has failed to save its state ({{ $labels.reason }}) for 10 minutes: counting goes on in memory, but a restart now resumes from the last saved checkpoint.',
      },
    },
  ],
  'powerbi-security': [
    {
      alert: 'PowerBIPublishToWeb',
      expr: 'sum by (%(by)s, workspace_id) (increase(powerbi_activity_events_total{activity="PublishToWebReport",%(s)s}[10m])) > 0',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'A report was published to the web (public, anonymous link).',
        description: 'Workspace {{ $labels.workspace_id }} published a report to the web; check powerbi_report_events_total{activity="PublishToWebReport"} for the report.',
      },
    },
    {
      alert: 'PowerBITenantSettingChanged',
      expr: 'sum by (%(by)s) (increase(powerbi_activity_events_total{activity="UpdatedAdminFeatureSwitch",%(s)s}[10m])) > 0',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A Power BI tenant setting was changed.',
        description: 'An admin changed a tenant setting on the tenant read by {{ $labels.instance }}.',
      },
    },
    {
      alert: 'PowerBIExportSpike',
      expr: |||
        sum by (%(by)s) (increase(powerbi_activity_events_total{activity=~"ExportReport|ExportArtifact|ExportTile|DownloadReport|PrintReport|PrintDashboard|AnalyzeInExcel",%(s)s}[1h]))
          > 3 * (
            sum by (%(by)s) (increase(powerbi_activity_events_total{activity=~"ExportReport|ExportArtifact|ExportTile|DownloadReport|PrintReport|PrintDashboard|AnalyzeInExcel",%(s)s}[1h] offset 1d))
            + sum by (%(by)s) (increase(powerbi_activity_events_total{activity=~"ExportReport|ExportArtifact|ExportTile|DownloadReport|PrintReport|PrintDashboard|AnalyzeInExcel",%(s)s}[1h] offset 7d))
          ) / 2 + 20
      |||,
      'for': '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: "Exports and downloads are far above the same hour's usual level.",
        description: 'Exports and downloads in the last hour on {{ $labels.instance }} are more than 3 times the same hour yesterday and a week ago (plus 20).',
      },
    },
    {
      alert: 'PowerBIMassDeletion',
      expr: 'sum by (%(by)s) (increase(powerbi_activity_events_total{activity=~"Delete.*",%(s)s}[15m])) > 20',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Many Power BI items were deleted within 15 minutes.',
        description: 'More than 20 deletions in 15 minutes on {{ $labels.instance }}.',
      },
    },
    {
      alert: 'PowerBIPermissionChangeBurst',
      expr: 'sum by (%(by)s) (increase(powerbi_activity_events_total{activity=~"UpdateWorkspaceAccess|UpdateFolderAccess|AddGroupMembers|DeleteGroupMembers|AddWorkspaceRoleViaAdminApi|UpdateWorkspaceRoleViaAdminApi|DeleteWorkspaceRoleViaAdminApi|AddAdminPersonalWorkspaceAccess|TakeOverDataset|TakeOverDatasource",%(s)s}[15m])) > 20',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A burst of Power BI permission changes.',
        description: 'More than 20 permission changes in 15 minutes on {{ $labels.instance }}.',
      },
    },
    {
      alert: 'PowerBIFailedActivityRatioHigh',
      expr: |||
        sum by (%(by)s) (rate(powerbi_activity_events_failed_total{%(s)s}[30m]))
          / sum by (%(by)s) (rate(powerbi_activity_events_total{%(s)s}[30m])) > 0.1
      |||,
      'for': '30m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'More than 10% of Power BI activities fail.',
        description: 'More than 10% of activities failed over 30 minutes on {{ $labels.instance }}; see powerbi_activity_events_failed_total by activity.',
      },
    },
    {
      alert: 'PowerBIExternalShare',
      expr: 'sum by (%(by)s, workspace_id, activity) (increase(powerbi_external_shares_total{%(s)s}[15m])) > 0',
      labels: { severity: 'warning' },
      annotations: {
        summary: "Content was shared with someone outside the tenant's domains.",
        description: 'Workspace {{ $labels.workspace_id }} shared content ({{ $labels.activity }}) with a recipient outside the tenant on {{ $labels.instance }}.',
      },
    },
    {
      alert: 'PowerBIUserExportBurst',
      expr: 'sum by (%(by)s, user) (increase(powerbi_user_sensitive_events_total{activity=~"Export.*|Download.*|Print.*|AnalyzeInExcel.*|AnalyzedByExternalApplication",%(s)s}[1h])) > 50',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'One user exported, downloaded or printed more than 50 times in an hour.',
        description: 'User {{ $labels.user }} (a pseudonym unless --users.label=plain) exported, downloaded or printed {{ $value | printf "%.0f" }} times in the last hour on {{ $labels.instance }}.',
      },
    },
    {
      alert: 'PowerBINewActivity',
      expr: 'count by (%(by)s) (powerbi_activity_first_seen_timestamp_seconds{%(s)s}) > count by (%(by)s) (powerbi_activity_first_seen_timestamp_seconds{%(s)s} offset 1h)',
      labels: { severity: 'info' },
      annotations: {
        summary: 'The activity log carries an activity the exporter had not seen before.',
        description: 'A new Activity value appeared on {{ $labels.instance }}: see the newest series of powerbi_activity_first_seen_timestamp_seconds and check whether dashboards and alerts should cover it.',
      },
    },
  ],
  'powerbi-items': [
    {
      alert: 'PowerBISemanticModelRefreshFailing',
      // Failures within the window as the counter's difference, a series first seen inside the
      // window counting from 0: increase() would miss the failure that created the series.
      expr: |||
        sum by (%%(by)s, workspace_id, item_id) (
          %s
        ) >= %d
      ||| % [
        since('powerbi_item_events_failed_total{item_type="semantic_model",activity="RefreshDataset",%(s)s}', config.semanticModelRefreshFailureWindow),
        config.semanticModelRefreshFailures,
      ],
      labels: { severity: 'warning' },
      annotations: {
        summary: "A semantic model's refreshes keep failing.",
        description: 'Semantic model {{ $labels.item_id }} in workspace {{ $labels.workspace_id }} failed {{ $value | printf "%%.0f" }} refreshes within %s on {{ $labels.instance }}; its name is in powerbi_item_info.' % config.semanticModelRefreshFailureWindow,
      },
    },
    {
      alert: 'PowerBISemanticModelNotRefreshed',
      // A model whose refreshes all failed since the exporter's state began counts as never
      // refreshed (its failure series times 0 stands in for the missing success).
      expr: |||
        (
          time() - max by (%%(by)s, item_id) (
              powerbi_semantic_model_last_refresh_timestamp_seconds{outcome="success",%%(s)s}
            or
              0 * powerbi_semantic_model_last_refresh_timestamp_seconds{outcome="failure",%%(s)s}
          ) > %d * 3600
        )
        and on (%%(by)s, item_id)
          sum by (%%(by)s, item_id) (%s) > 0
      ||| % [
        config.semanticModelMaxRefreshAgeHours,
        since('powerbi_semantic_model_report_views_total{%(s)s}', config.semanticModelViewedWindow),
      ],
      'for': '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A semantic model used by viewed reports has not been refreshed successfully for too long.',
        description: 'Semantic model {{ $labels.item_id }} has had no successful refresh for {{ $value | humanizeDuration }} (over %dh) while reports built on it were viewed within %s, on {{ $labels.instance }}; its name is in powerbi_item_info.' % [config.semanticModelMaxRefreshAgeHours, config.semanticModelViewedWindow],
      },
    },
  ],
};

{
  prometheusAlerts+:: {
    groups+: [
      {
        name: name,
        rules: [
          rule {
            expr: super.expr % {
              s: $._config.powerbiExporterSelector,
              by: std.join(', ', $._config.alertGroupLabels),
            },
            annotations+: {
              runbook_url: $._config.runbookURLPattern % std.asciiLower(rule.alert),
            },
          }
          for rule in rules($._config)[name]
        ],
      }
      for name in ['powerbi-exporter-health', 'powerbi-security', 'powerbi-items']
    ],
  },
}
