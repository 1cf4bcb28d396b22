//! The metric catalogue: the one place where every family the exporter exposes is defined.
//!
//! Invariants:
//! - every family rendered by [`crate::exposition`] has an entry here, and its samples carry
//!   exactly the labels listed here, in this order;
//! - the README's metrics table is generated from [`markdown_table`] (a test fails if the
//!   README drifts);
//! - each family's [`Origin`] says where its values are read at scrape time (the last saved
//!   checkpoint or the running process), and nowhere else says it;
//! - families with a `default_cap` are cardinality-capped; the cap is configurable per family
//!   by its name (`limits.max_series.<name>`), and label sets past it are counted in one
//!   overflow series whose labels are all [`OVERFLOW_LABEL`].

mod samples;
pub use samples::{Collector, FamilySamples, Sample, Samples, SharedSamples, Snapshot};

/// Label value of the overflow series of a capped family.
pub const OVERFLOW_LABEL: &str = "__other__";

/// Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Where a family's values are read when `/metrics` is scraped or metrics are pushed: the one
/// place that says which families a state directory makes durable and which are the running
/// process's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Counted from the source into the state `--state.dir` saves (the aggregator's families
    /// and the source's status), served as of the last published checkpoint: with a state
    /// directory the last saved one, so a restart never takes a served value back; without one,
    /// the last built after a poll or a batch of documents.
    Saved,
    /// Stats of the running process itself (forwarding, checkpoint failures, OTLP pushes, the
    /// web server), read at every scrape whether or not there is a state directory.
    Live,
}

/// One metric family: what `# HELP` and `# TYPE` say, which labels its samples carry, and
/// where its values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// Series cap when the family is capped; `None` for families with a fixed, small set.
    pub default_cap: Option<usize>,
    pub origin: Origin,
}

/// One family per call, always in the same layout:
///
/// ```text
/// family! {
///     IDENT: "metric_name", Kind, Origin,
///     labels: ["label", ...], cap: 5_000 | none,
///     help: "One sentence.",
/// }
/// ```
///
/// (Braces, so that `rustfmt` leaves the layout alone.)
macro_rules! family {
    (@cap none) => {
        None
    };
    (@cap $cap:literal) => {
        Some($cap)
    };
    (
        $ident:ident: $name:literal, $kind:ident, $origin:ident,
        labels: [$($label:literal),*], cap: $cap:tt,
        help: $help:literal,
    ) => {
        pub const $ident: Family = Family {
            name: $name,
            kind: Kind::$kind,
            help: $help,
            labels: &[$($label),*],
            default_cap: family!(@cap $cap),
            origin: Origin::$origin,
        };
    };
}

// === Usage families ===

family! {
    ACTIVITY_EVENTS: "powerbi_activity_events_total", Counter, Saved,
    labels: ["workspace_id", "activity"], cap: 5_000,
    help: "Activity events by workspace (WorkspaceId, empty when the event has none) and Activity, each event Id counted once.",
}
family! {
    ACTIVITY_EVENTS_FAILED: "powerbi_activity_events_failed_total", Counter, Saved,
    labels: ["workspace_id", "activity"], cap: 5_000,
    help: "Activity events with IsSuccess=false, by workspace and Activity.",
}
family! {
    REPORT_EVENTS: "powerbi_report_events_total", Counter, Saved,
    labels: ["workspace_id", "report_id", "activity"], cap: 20_000,
    help: "Activity events that carry a ReportId, by workspace, report and Activity (views: activity=\"ViewReport\").",
}
family! {
    WORKSPACE_INFO: "powerbi_workspace_info", Gauge, Saved,
    labels: ["workspace_id", "workspace_name", "type", "capacity_id"], cap: 5_000,
    help: "Workspace names (WorkSpaceName of the newest event by CreationTime, or the inventory's name when newer); with --inventory.enabled also type (personal or shared) and capacity_id. Always 1, join on workspace_id.",
}
family! {
    REPORTS: "powerbi_reports", Gauge, Saved,
    labels: ["workspace_id", "state"], cap: 10_000,
    help: "Reports of the inventory (--inventory.enabled) by workspace: state=\"used\" with a ViewReport in the last 28 days, state=\"unused\" without.",
}
family! {
    REPORT_INFO: "powerbi_report_info", Gauge, Saved,
    labels: ["report_id", "report_name", "workspace_id"], cap: 20_000,
    help: "Report names (ReportName of the newest event by CreationTime); always 1, join on report_id.",
}
family! {
    ACTIVE_USERS: "powerbi_active_users", Gauge, Saved,
    labels: ["window"], cap: none,
    help: "Distinct users (UserId, case-insensitive) with at least one event whose CreationTime lies in the window before the reference time.",
}
family! {
    WORKSPACE_ACTIVE_USERS: "powerbi_workspace_active_users", Gauge, Saved,
    labels: ["workspace_id", "window"], cap: 6_000,
    help: "Distinct users with at least one event in the workspace whose CreationTime lies in the window before the reference time.",
}

family! {
    USER_SENSITIVE_EVENTS: "powerbi_user_sensitive_events_total", Counter, Saved,
    labels: ["user", "activity"], cap: 10_000,
    help: "Security-relevant events (exports, downloads, prints, analyze in Excel and external tools, publish to web, shares, permission changes, deletions, tenant-setting changes) by user and Activity. user is a keyed pseudonym by default, the UserId only with --users.label=plain, and the family is absent with --users.label=off.",
}
family! {
    EXTERNAL_SHARES: "powerbi_external_shares_total", Counter, Saved,
    labels: ["workspace_id", "activity"], cap: 5_000,
    help: "Share events with at least one recipient e-mail outside the tenant's domains (--tenant.domains, else the domains of the tenant's own users seen so far), by workspace and Activity.",
}
family! {
    REPORT_VIEWERS: "powerbi_report_viewers", Gauge, Saved,
    labels: ["report_id", "window"], cap: 40_000,
    help: "Distinct users who viewed the report (ViewReport) in the window of whole UTC days ending today: exact up to 128 viewers per report-day, else a HyperLogLog estimate (standard error 4.6%).",
}
family! {
    FIELD_TYPE_MISMATCHES: "powerbi_event_field_type_mismatches_total", Counter, Saved,
    labels: ["field"], cap: none,
    help: "Events (each counted once) where an optional field had a JSON type the API does not send there (e.g. IsSuccess as a string); the field is treated as absent. Schema drift shows here first.",
}
family! {
    REPORT_LAST_VIEW: "powerbi_report_last_view_timestamp_seconds", Gauge, Saved,
    labels: ["report_id"], cap: 20_000,
    help: "CreationTime of the newest ViewReport event of the report, as a Unix timestamp (kept in the state). Reports not viewed for 30 days: time() - x > 30 * 86400.",
}
family! {
    WORKSPACE_LAST_ACTIVITY: "powerbi_workspace_last_activity_timestamp_seconds", Gauge, Saved,
    labels: ["workspace_id"], cap: 5_000,
    help: "CreationTime of the newest event of any activity in the workspace, as a Unix timestamp (kept in the state).",
}
family! {
    ACTIVITY_FIRST_SEEN: "powerbi_activity_first_seen_timestamp_seconds", Gauge, Saved,
    labels: ["activity"], cap: 1_000,
    help: "CreationTime of the earliest event of each Activity (spelled as the API sends it), as a Unix timestamp: a new series is an activity the exporter had never seen (schema drift).",
}

// === Item families (issue 18): one item per event, by the rule of `decode::item` ===

family! {
    ITEM_EVENTS: "powerbi_item_events_total", Counter, Saved,
    labels: ["workspace_id", "item_type", "item_id", "activity"], cap: 50_000,
    help: "Activity events by the one item each is about (report, semantic_model, dashboard, dataflow, app, or a Fabric ArtifactKind in lower snake case such as lakehouse, notebook, warehouse, data_pipeline; see the README's item rule), by workspace and Activity.",
}
family! {
    ITEM_EVENTS_FAILED: "powerbi_item_events_failed_total", Counter, Saved,
    labels: ["workspace_id", "item_type", "item_id", "activity"], cap: 10_000,
    help: "Item events with IsSuccess=false (a failed RefreshDataset: item_type=\"semantic_model\", activity=\"RefreshDataset\"), by workspace, item and Activity.",
}
family! {
    ITEM_INFO: "powerbi_item_info", Gauge, Saved,
    labels: ["item_id", "item_type", "item_name", "workspace_id"], cap: 40_000,
    help: "Item names (the item's name field of the newest event by CreationTime, or the inventory's name when newer); always 1, join on item_type and item_id.",
}
family! {
    ITEM_LAST_ACTIVITY: "powerbi_item_last_activity_timestamp_seconds", Gauge, Saved,
    labels: ["item_type", "item_id"], cap: 40_000,
    help: "CreationTime of the newest event about the item, as a Unix timestamp (kept in the state).",
}
family! {
    ITEMS: "powerbi_items", Gauge, Saved,
    labels: ["workspace_id", "item_type", "state"], cap: 30_000,
    help: "Items of the inventory (--inventory.enabled: reports, semantic models, dashboards and dataflows of admin/groups) by workspace and type: state=\"used\" with an event about the item in the last 28 days, state=\"unused\" without.",
}
family! {
    SEMANTIC_MODEL_REPORT_VIEWS: "powerbi_semantic_model_report_views_total", Counter, Saved,
    labels: ["workspace_id", "item_id"], cap: 20_000,
    help: "ViewReport events whose DatasetId names the semantic model (views of reports built on it), by the report's workspace and the model's id: the use of a model.",
}
family! {
    SEMANTIC_MODEL_LAST_REFRESH: "powerbi_semantic_model_last_refresh_timestamp_seconds", Gauge, Saved,
    labels: ["item_id", "outcome"], cap: 20_000,
    help: "CreationTime of the newest RefreshDataset event of the semantic model by outcome (success, or failure with IsSuccess=false), as a Unix timestamp (kept in the state).",
}

// === Self metrics ===

family! {
    BUILD_INFO: "powerbi_exporter_build_info", Gauge, Saved,
    labels: ["version", "revision", "branch", "rustversion"], cap: none,
    help: "Build of the running exporter, as the Prometheus toolkit's <name>_build_info (rustversion for goversion); always 1.",
}
family! {
    EVENTS_FILTERED: "powerbi_events_filtered_total", Counter, Saved,
    labels: ["reason"], cap: none,
    help: "Events left out on purpose, by reason: own_export (the exporter's own reads of the log, see --powerbi.count-own-exports), and the scoping filters workspace, personal_workspace, user, service_principal, activity (--filter.*).",
}
family! {
    EVENTS_PROCESSED: "powerbi_events_processed_total", Counter, Saved,
    labels: [], cap: none,
    help: "Events read from the source: counted, duplicate, filtered and rejected alike.",
}
family! {
    EVENTS_DUPLICATE: "powerbi_events_duplicate_total", Counter, Saved,
    labels: [], cap: none,
    help: "Events whose Id had already been counted (re-reads of recent hours, duplicate deliveries); they are not counted again.",
}
family! {
    EVENTS_REJECTED: "powerbi_events_rejected_total", Counter, Saved,
    labels: ["reason"], cap: none,
    help: "Events skipped because they could not be used, by reason.",
}
family! {
    SERIES_DROPPED: "powerbi_series_dropped_total", Counter, Saved,
    labels: ["family"], cap: none,
    help: "Samples whose label set exceeded the family's series cap and went to its __other__ overflow series instead.",
}
family! {
    SERIES_EXPIRED: "powerbi_series_expired_total", Counter, Saved,
    labels: ["family"], cap: none,
    help: "Series removed after no event for longer than --limits.series-retention (default 35d), freeing their place under the family's cap; a counter that comes back starts again from 0.",
}
family! {
    PAGES_PROCESSED: "powerbi_pages_processed_total", Counter, Saved,
    labels: [], cap: none,
    help: "Source documents (API pages, replay files, simulated pages) decoded to their end.",
}
family! {
    PAGES_FAILED: "powerbi_pages_failed_total", Counter, Saved,
    labels: [], cap: none,
    help: "Source documents that could not be read or were not valid JSON to their end (truncated, unreadable); events before the fault are kept.",
}
family! {
    EVENTS_WATERMARK: "powerbi_events_watermark_timestamp_seconds", Gauge, Saved,
    labels: [], cap: none,
    help: "CreationTime of the newest event counted, as a Unix timestamp; the lag is time() minus this value.",
}

// === Live source (self metrics of the API client) ===

family! {
    UP: "powerbi_up", Gauge, Saved,
    labels: [], cap: none,
    help: "1 when the last poll read every planned hour of the activity log to its end, else 0.",
}
family! {
    LAST_POLL_SUCCESS: "powerbi_last_poll_success_timestamp_seconds", Gauge, Saved,
    labels: [], cap: none,
    help: "When the last fully successful poll started, as a Unix timestamp.",
}
family! {
    POLL_DURATION: "powerbi_poll_duration_seconds", Gauge, Saved,
    labels: [], cap: none,
    help: "How long the last poll took.",
}
family! {
    API_REQUESTS: "powerbi_api_requests_total", Counter, Saved,
    labels: ["code", "purpose"], cap: none,
    help: "Requests to the Activity Events API (and admin/groups, purpose=\"inventory\") by HTTP status (code=\"error\" when no response came), retries included, and by purpose: current (the current hour), reread (an ended hour at one of --powerbi.reread-ages), backlog (an hour never read), initial (the initial lookback), inventory, top, backfill; unknown for counts saved before the purposes.",
}
family! {
    API_REQUESTS_PLANNED: "powerbi_api_requests_planned_next_hour", Gauge, Saved,
    labels: [], cap: none,
    help: "Activity Events requests the re-read schedule plans for the next hour (one per hour read; a busy hour takes a page more per 5,000-10,000 events), within --powerbi.max-requests-per-hour.",
}
family! {
    LOOKBACK_HOURS: "powerbi_lookback_hours", Gauge, Saved,
    labels: ["state"], cap: none,
    help: "Hours of the lookback (and of the initial lookback being loaded) by state: settled (read, nothing due), due (a re-read is due), never_read, failed (the last read failed).",
}
family! {
    API_THROTTLED: "powerbi_api_throttled_total", Counter, Saved,
    labels: [], cap: none,
    help: "429 answers of the Activity Events API.",
}
family! {
    API_BUDGET_REMAINING: "powerbi_api_budget_remaining", Gauge, Saved,
    labels: [], cap: none,
    help: "Requests the exporter may still send in the current rolling hour (--powerbi.max-requests-per-hour).",
}
family! {
    API_FOREIGN_CONTINUATIONS: "powerbi_api_foreign_continuations_total", Counter, Saved,
    labels: [], cap: none,
    help: "continuationUri values refused because they pointed to a host other than the API or a Power BI cluster.",
}
family! {
    API_RETRY_AFTER_CLAMPED: "powerbi_api_retry_after_clamped_total", Counter, Saved,
    labels: [], cap: none,
    help: "429 answers whose wait (Retry-After, or the body's text) was longer than an hour; requests were blocked for an hour only.",
}
family! {
    API_BAD_CONTINUATIONS: "powerbi_api_bad_continuations_total", Counter, Saved,
    labels: [], cap: none,
    help: "Pages whose continuation could not be followed (continuationUri not a URL even relative to the API, and no usable continuationToken); the hour is read again.",
}
family! {
    AUTH_ERRORS: "powerbi_auth_errors_total", Counter, Saved,
    labels: ["reason"], cap: none,
    help: "Failed token requests to Entra ID, by reason.",
}
family! {
    CREDENTIAL_EXPIRY: "powerbi_credential_expiry_timestamp_seconds", Gauge, Saved,
    labels: ["kind"], cap: none,
    help: "When credentials expire, as Unix timestamps: kind=\"token\" (the access token, refreshed 5 minutes before) and kind=\"certificate\" (the client certificate's notAfter).",
}
family! {
    SWEEP_AGE: "powerbi_lookback_sweep_age_seconds", Gauge, Saved,
    labels: [], cap: none,
    help: "How long the most overdue read of an hour inside the lookback has waited past its time (--powerbi.reread-ages); 0 when the schedule is kept.",
}
family! {
    INITIAL_LOOKBACK_REMAINING: "powerbi_initial_lookback_hours_remaining", Gauge, Saved,
    labels: [], cap: none,
    help: "Hours of the initial lookback (--powerbi.initial-lookback, first start) not read yet; 0 once the history is loaded.",
}

family! {
    LABEL_VALUES_TRUNCATED: "powerbi_label_values_truncated_total", Counter, Saved,
    labels: ["label"], cap: none,
    help: "Label values from events cut to 1024 bytes (at a character boundary) before being exposed, by label; the real API never sends such values.",
}
family! {
    INVENTORY_LAST_SUCCESS: "powerbi_inventory_last_success_timestamp_seconds", Gauge, Saved,
    labels: [], cap: none,
    help: "When the inventory (admin/groups) was last read to its end, as a Unix timestamp.",
}
family! {
    INVENTORY_ERRORS: "powerbi_inventory_errors_total", Counter, Saved,
    labels: ["reason"], cap: none,
    help: "Failed inventory reads by reason (throttled, timeout, http_error, invalid_response, auth, budget); activity polling goes on regardless.",
}
family! {
    WEB_REJECTIONS: "powerbi_web_rejections_total", Counter, Live,
    labels: ["reason"], cap: none,
    help: "Connections and requests the web server refused: reason=\"tls_handshake\" (failed or timed-out TLS handshake, e.g. a missing or untrusted client certificate), \"unauthorized\" (basic auth failed), \"max_requests\" (over --web.max-requests concurrent scrapes).",
}
family! {
    WEB_CONFIG_RELOAD_SUCCESS: "powerbi_web_config_last_reload_successful", Gauge, Live,
    labels: [], cap: none,
    help: "1 when the last load of --web.config.file succeeded, 0 when it failed and the previous settings are still in force.",
}
family! {
    WEB_CONFIG_RELOAD_TIMESTAMP: "powerbi_web_config_last_reload_success_timestamp_seconds", Gauge, Live,
    labels: [], cap: none,
    help: "When --web.config.file was last loaded successfully, as a Unix timestamp.",
}

family! {
    FORWARDED_EVENTS: "powerbi_forwarded_events_total", Counter, Live,
    labels: ["sink"], cap: none,
    help: "Raw events the sink's destination accepted (sink=\"logs_ingestion\" Azure Monitor Logs Ingestion, \"otlp_logs\" OTLP logs); at-least-once, so a batch in flight at a crash is counted again.",
}
family! {
    FORWARD_ERRORS: "powerbi_forward_errors_total", Counter, Live,
    labels: ["sink", "reason"], cap: none,
    help: "Failed deliveries by sink and reason (throttled, too_large, server_error, client_error, auth, network); each is retried, with backoff or after Retry-After.",
}
family! {
    FORWARD_DROPPED: "powerbi_forward_dropped_events_total", Counter, Live,
    labels: ["sink", "reason"], cap: none,
    help: "Events a sink gave up: reason=\"rejected\" (the destination refuses the event itself), \"too_large\" (one event over the batch limit), \"backlog_full\" (over --forward.max-backlog-bytes before the sink read it).",
}
family! {
    FORWARD_BACKLOG: "powerbi_forward_backlog_events", Gauge, Live,
    labels: ["sink"], cap: none,
    help: "Counted events the sink's destination has not accepted yet.",
}
family! {
    FORWARD_HELD_BACK: "powerbi_forward_held_back_bytes", Gauge, Live,
    labels: [], cap: none,
    help: "Counted events waiting in memory because the forwarding spool cannot be written (a full disk), in bytes; at 64 MiB (or --forward.max-backlog-bytes, when smaller) counting waits until the spool works again. Only with --state.dir; 0 without forwarding.",
}
family! {
    STATE_SAVE_ERRORS: "powerbi_state_save_errors_total", Counter, Live,
    labels: ["reason"], cap: none,
    help: "Checkpoints not saved, by the step that failed: spool_append and spool_sync (the forwarding spool could not take the counted events, e.g. a full disk: the checkpoint is held back until it can), state_write (writing state.json failed). /metrics keeps the last saved values meanwhile. Since the process started; only with --state.dir.",
}
family! {
    OTLP_EXPORT_ERRORS: "powerbi_otlp_export_errors_total", Counter, Live,
    labels: [], cap: none,
    help: "OTLP metric pushes that failed after the exporter's retries (collector down, refused, timed out); the next push carries the cumulative values, so nothing is lost.",
}

/// Every family, in exposition order (sorted by name).
pub const ALL: &[Family] = &[
    ACTIVE_USERS,
    ACTIVITY_EVENTS_FAILED,
    ACTIVITY_EVENTS,
    ACTIVITY_FIRST_SEEN,
    API_BAD_CONTINUATIONS,
    API_BUDGET_REMAINING,
    API_FOREIGN_CONTINUATIONS,
    API_REQUESTS_PLANNED,
    API_REQUESTS,
    API_RETRY_AFTER_CLAMPED,
    API_THROTTLED,
    AUTH_ERRORS,
    CREDENTIAL_EXPIRY,
    FIELD_TYPE_MISMATCHES,
    EVENTS_DUPLICATE,
    EVENTS_FILTERED,
    EVENTS_PROCESSED,
    EVENTS_REJECTED,
    EVENTS_WATERMARK,
    BUILD_INFO,
    EXTERNAL_SHARES,
    FORWARD_BACKLOG,
    FORWARD_DROPPED,
    FORWARD_ERRORS,
    FORWARD_HELD_BACK,
    FORWARDED_EVENTS,
    INITIAL_LOOKBACK_REMAINING,
    INVENTORY_ERRORS,
    INVENTORY_LAST_SUCCESS,
    ITEM_EVENTS_FAILED,
    ITEM_EVENTS,
    ITEM_INFO,
    ITEM_LAST_ACTIVITY,
    ITEMS,
    LABEL_VALUES_TRUNCATED,
    LAST_POLL_SUCCESS,
    LOOKBACK_HOURS,
    SWEEP_AGE,
    OTLP_EXPORT_ERRORS,
    PAGES_FAILED,
    PAGES_PROCESSED,
    POLL_DURATION,
    REPORT_EVENTS,
    REPORT_INFO,
    REPORT_LAST_VIEW,
    REPORT_VIEWERS,
    REPORTS,
    SEMANTIC_MODEL_LAST_REFRESH,
    SEMANTIC_MODEL_REPORT_VIEWS,
    SERIES_DROPPED,
    SERIES_EXPIRED,
    STATE_SAVE_ERRORS,
    UP,
    USER_SENSITIVE_EVENTS,
    WEB_CONFIG_RELOAD_TIMESTAMP,
    WEB_CONFIG_RELOAD_SUCCESS,
    WEB_REJECTIONS,
    WORKSPACE_ACTIVE_USERS,
    WORKSPACE_INFO,
    WORKSPACE_LAST_ACTIVITY,
];

/// The families `backfill` writes for past instants: those whose value at a time t follows
/// from the events created up to t alone (counted from events, with windows ending at t), so
/// that history recomputed later equals what a live scrape at t would have shown. Self metrics
/// of reading (pages, duplicates, rejections, the source's requests) depend on when and how
/// the log was read, not on the events' times, and are left out. `build_info` is in: the
/// dashboards find their job, tenant and exporter from it.
pub const BACKFILLED: &[&Family] = &[
    &ACTIVITY_EVENTS,
    &ACTIVITY_EVENTS_FAILED,
    &REPORT_EVENTS,
    &WORKSPACE_INFO,
    &REPORT_INFO,
    &ACTIVE_USERS,
    &WORKSPACE_ACTIVE_USERS,
    &USER_SENSITIVE_EVENTS,
    &EXTERNAL_SHARES,
    &REPORT_VIEWERS,
    &REPORT_LAST_VIEW,
    &WORKSPACE_LAST_ACTIVITY,
    &ACTIVITY_FIRST_SEEN,
    &ITEM_EVENTS,
    &ITEM_EVENTS_FAILED,
    &ITEM_INFO,
    &ITEM_LAST_ACTIVITY,
    &SEMANTIC_MODEL_REPORT_VIEWS,
    &SEMANTIC_MODEL_LAST_REFRESH,
    &BUILD_INFO,
];

/// Looks a family up by its metric name.
pub fn by_name(name: &str) -> Option<&'static Family> {
    ALL.iter().find(|f| f.name == name)
}

/// Families whose series count is capped.
pub fn capped() -> impl Iterator<Item = &'static Family> {
    ALL.iter().filter(|f| f.default_cap.is_some())
}

/// The README's metrics table.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Metric | Type | Labels | Default cap | Description |\n|---|---|---|---|---|\n",
    );
    for f in ALL {
        let labels = if f.labels.is_empty() {
            "—".to_string()
        } else {
            f.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cap = f.default_cap.map_or("—".to_string(), |c| c.to_string());
        let help = f.help.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name,
            f.kind.as_str(),
            labels,
            cap,
            help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for f in ALL {
            assert!(f.name.starts_with("powerbi_"), "{}", f.name);
            assert!(
                f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                f.name
            );
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}: _total iff counter",
                f.name
            );
            assert!(f.help.ends_with('.'), "{}: HELP is a sentence", f.name);
            for l in f.labels {
                assert!(
                    l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{}: label {l}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn exposition_order_is_sorted_and_unique() {
        let names: Vec<_> = ALL.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn backfilled_families_are_saved_catalogue_families_once_each() {
        let mut names: Vec<_> = BACKFILLED.iter().map(|f| f.name).collect();
        for f in BACKFILLED {
            assert_eq!(by_name(f.name), Some(*f), "{}", f.name);
            assert_eq!(
                f.origin,
                Origin::Saved,
                "{}: a live stat has no past",
                f.name
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BACKFILLED.len());
    }
}
