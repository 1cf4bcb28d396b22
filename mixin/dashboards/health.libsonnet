local g = import '../lib/grafana.libsonnet';
{
  grafanaDashboards+:: {
    'powerbi-exporter-health.json': g.dashboard(
      $._config,
      uid='powerbi-exporter-health',
      title='Power BI exporter health',
      description='Is the exporter collecting, how late is the data, and how is it treating the API.',
      variables=[
      ],
      panels=[
        g.panel('stat', 'Scrape and poll', 'up: Prometheus can scrape the exporter; powerbi_up: the last poll read every planned hour.', 'bool', [0, 0, 8, 8], [
          g.range('up{%(s)s}', 'scrape {{%(i)s}}'),
          g.range('powerbi_up{%(s)s}', 'poll {{%(i)s}}'),
        ]),
        g.panel('timeseries', 'Poll lag', 'Age of the newest counted event and time since the last complete poll.', 's', [8, 0, 8, 8], [
          g.range('time() - powerbi_events_watermark_timestamp_seconds{%(s)s}', 'newest event'),
          g.range('time() - powerbi_last_poll_success_timestamp_seconds{%(s)s}', 'last complete poll'),
        ]),
        g.panel('timeseries', 'Lookback sweep age', 'How long the most overdue read of an hour (at one of --powerbi.reread-ages) has waited; 0 while the schedule is kept.', 's', [16, 0, 8, 8], [
          g.range('powerbi_lookback_sweep_age_seconds{%(s)s}', '{{%(i)s}}'),
        ]),
        g.panel('timeseries', 'API requests by code', 'Requests to the Activity Events API per interval, by HTTP status.', 'short', [0, 8, 8, 8], [
          g.range('sum by (code) (increase(powerbi_api_requests_total{%(s)s}[$__rate_interval]))', '{{code}}'),
        ]),
        g.panel('timeseries', 'Throttling and budget', "429 answers per interval and requests left in the exporter's hourly budget.", 'short', [8, 8, 8, 8], [
          g.range('sum(increase(powerbi_api_throttled_total{%(s)s}[$__rate_interval]))', 'throttled'),
          g.range('powerbi_api_budget_remaining{%(s)s}', 'budget left'),
        ]),
        g.panel('timeseries', 'Auth errors', 'Failed token requests per interval, by reason.', 'short', [16, 8, 8, 8], [
          g.range('sum by (reason) (increase(powerbi_auth_errors_total{%(s)s}[$__rate_interval]))', '{{reason}}'),
        ]),
        g.panel('stat', 'Credential expiry', 'Time until the access token and the client certificate expire.', 's', [0, 16, 8, 8], [
          g.range('powerbi_credential_expiry_timestamp_seconds{%(s)s} - time()', '{{kind}}'),
        ]),
        g.panel('timeseries', 'Events', 'Events read, counted as duplicates (re-reads), filtered and rejected, per interval.', 'short', [8, 16, 8, 8], [
          g.range('sum(increase(powerbi_events_processed_total{%(s)s}[$__rate_interval]))', 'read'),
          g.range('sum(increase(powerbi_events_duplicate_total{%(s)s}[$__rate_interval]))', 'duplicate'),
          g.range('sum(increase(powerbi_events_filtered_total{%(s)s}[$__rate_interval]))', 'filtered'),
          g.range('sum(increase(powerbi_events_rejected_total{%(s)s}[$__rate_interval]))', 'rejected'),
        ]),
        g.panel('timeseries', 'Dropped series', "Samples sent to a family's __other__ series by its cap, per interval.", 'short', [16, 16, 8, 8], [
          g.range('sum by (family) (increase(powerbi_series_dropped_total{%(s)s}[$__rate_interval]))', '{{family}}'),
        ]),
        g.panel('timeseries', 'Forwarded events', 'Raw events accepted by each forwarding destination (Logs Ingestion, OTLP logs), per interval.', 'short', [0, 24, 8, 8], [
          g.range('sum by (sink) (increase(powerbi_forwarded_events_total{%(s)s}[$__rate_interval]))', '{{sink}}'),
        ]),
        g.panel('timeseries', 'Forwarding backlog', 'Counted events a destination has not accepted yet; it grows while a destination is down and drains when it is back.', 'short', [8, 24, 8, 8], [
          g.range('sum by (sink) (powerbi_forward_backlog_events{%(s)s})', '{{sink}}'),
        ]),
        g.panel('timeseries', 'Forwarding and OTLP errors', 'Failed deliveries by sink and reason, events given up, and failed OTLP metric pushes, per interval.', 'short', [16, 24, 8, 8], [
          g.range('sum by (sink, reason) (increase(powerbi_forward_errors_total{%(s)s}[$__rate_interval]))', '{{sink}} {{reason}}'),
          g.range('sum by (sink, reason) (increase(powerbi_forward_dropped_events_total{%(s)s}[$__rate_interval]))', 'dropped {{sink}} {{reason}}'),
          g.range('sum(increase(powerbi_otlp_export_errors_total{%(s)s}[$__rate_interval]))', 'OTLP push'),
        ]),
        g.panel('timeseries', 'API requests by purpose', 'Requests per interval by why they were sent: current hour, re-read at an age, backlog, initial lookback, inventory, top, backfill.', 'short', [0, 32, 8, 8], [
          g.range('sum by (purpose) (increase(powerbi_api_requests_total{%(s)s}[$__rate_interval]))', '{{purpose}}'),
        ]),
        g.panel('timeseries', 'Lookback hours by state', 'Hours of the lookback: settled (read, nothing due), due for a re-read, never read, failed.', 'short', [8, 32, 8, 8], [
          g.range('sum by (state) (powerbi_lookback_hours{%(s)s})', '{{state}}'),
        ]),
        g.panel('timeseries', 'Requests planned for the next hour', "What the re-read schedule plans to send in the next hour, against the exporter's hourly budget.", 'short', [16, 32, 8, 8], [
          g.range('powerbi_api_requests_planned_next_hour{%(s)s}', 'planned'),
          g.range('powerbi_api_budget_remaining{%(s)s}', 'budget left'),
        ]),
      ],
    ),
  },
}
