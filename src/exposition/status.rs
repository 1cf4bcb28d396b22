//! The status page at `/`: plain server-rendered HTML (inline CSS, no script) for a person who
//! opens the exporter in a browser.
//!
//! It shows the last polls and their outcome, the lag (now − newest event), the request
//! budget, a grid of the hours the source reads (read / not yet read / failed), the most viewed
//! reports of the last day, and links to the telemetry path and the health endpoints.
//!
//! Invariants:
//! - everything from the tenant (names, ids, error text) is HTML-escaped;
//! - no user appears, whatever `--users.label` says: the page shows reports and hours only;
//! - its size is bounded whatever the tenant: at most [`TOP_REPORTS`] reports, 20 polls,
//!   28 × 24 hour cells, names cut at [`NAME_CHARS`] (see [`MAX_BYTES`]).

use std::fmt::Write as _;

use crate::aggregate::recent::{TopReport, UsageStatus};
use crate::decode::UnixMillis;
use crate::source::{HourGrid, HourState, PollOutcome, PollRecord, SourceStatus};

/// What the status page shows: the source's status (kept by the pipeline) and what the
/// aggregator counted.
#[derive(Debug, Clone, Default)]
pub struct StatusData {
    /// The live source's last status (`None` for replay and demo).
    pub source: Option<SourceStatus>,
    /// Newest `CreationTime` counted.
    pub watermark: Option<UnixMillis>,
    /// Events read (accepted, duplicate and rejected).
    pub processed: u64,
    /// Most viewed reports in the day ending at `day_end`.
    pub top_reports: Vec<TopReport>,
    pub day_end: UnixMillis,
}

impl StatusData {
    pub fn new(source: Option<SourceStatus>, usage: UsageStatus) -> Self {
        StatusData {
            source,
            watermark: usage.watermark,
            processed: usage.processed,
            top_reports: usage.top_reports,
            day_end: usage.day_end,
        }
    }
}

/// Reports in the top list.
pub const TOP_REPORTS: usize = 10;
/// Longest name shown, in characters (the label cap is larger; a page row needs less).
pub const NAME_CHARS: usize = 80;
/// A page never exceeds this many bytes (tested with the worst case of every part).
pub const MAX_BYTES: usize = 96 * 1024;

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;max-width:70em}\
table{border-collapse:collapse}td,th{padding:.15em .5em;text-align:left}\
tr:nth-child(even){background:#f4f4f4}.num{text-align:right}\
.grid td{width:.9em;height:.9em;padding:0;border:1px solid #fff}\
.read{background:#2e7d32}.not-yet-read{background:#bdbdbd}.failed{background:#c62828}\
.complete{color:#2e7d32}.paused{color:#8d6e00}.failed-poll{color:#c62828}";

/// The page, rendered at `now`.
pub fn render(data: &StatusData, telemetry_path: &str, now: UnixMillis) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Power BI exporter</title><style>{CSS}</style></head>\n<body>\n\
         <h1>Power BI exporter</h1>\n<p>Power BI / Microsoft Fabric activity events as \
         Prometheus metrics. Version {}. Page rendered at {}.</p>\n",
        escape(crate::VERSION),
        now.to_api_string() + "Z"
    );
    links(&mut out, telemetry_path);
    lag(&mut out, data, now);
    match &data.source {
        Some(status) => {
            budget(&mut out, status);
            polls(&mut out, &status.polls);
            hours(&mut out, status.hours.as_ref());
        }
        None => out.push_str(
            "<section id=\"source\"><h2>Source</h2><p>Not the live API (replay or demo): \
             no polls, budget or hours to show.</p></section>\n",
        ),
    }
    reports(&mut out, &data.top_reports, data.day_end);
    out.push_str("</body></html>\n");
    out
}

fn links(out: &mut String, telemetry_path: &str) {
    let _ = writeln!(
        out,
        "<nav id=\"links\"><ul><li><a href=\"{}\">Metrics</a></li>\
         <li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li>\
         </ul></nav>",
        escape(telemetry_path)
    );
}

fn lag(out: &mut String, data: &StatusData, now: UnixMillis) {
    out.push_str("<section id=\"lag\"><h2>Lag</h2>");
    match data.watermark {
        Some(w) => {
            let _ = write!(
                out,
                "<p>Newest event counted: <time id=\"watermark\">{}</time>, \
                 <span id=\"lag-seconds\">{}</span> s before now. Events read: \
                 <span id=\"events-read\">{}</span>.</p>",
                w.to_api_string() + "Z",
                (now.0 - w.0).max(0) / 1000,
                data.processed
            );
        }
        None => out.push_str("<p>No event counted yet.</p>"),
    }
    out.push_str("</section>\n");
}

fn budget(out: &mut String, status: &SourceStatus) {
    let _ = writeln!(
        out,
        "<section id=\"budget\"><h2>Request budget</h2><p><span id=\"budget-remaining\">{}\
         </span> of <span id=\"budget-limit\">{}</span> requests left in the rolling hour \
         (after the last poll).</p></section>",
        status.budget_remaining, status.budget_limit
    );
}

fn polls(out: &mut String, polls: &[PollRecord]) {
    out.push_str(
        "<section id=\"polls\"><h2>Last polls</h2><table><thead><tr><th>Started</th>\
         <th>Seconds</th><th>Hours read</th><th>Hours failed</th><th>Events</th>\
         <th>Outcome</th></tr></thead><tbody>",
    );
    for p in polls.iter().rev() {
        let (class, outcome) = match &p.outcome {
            PollOutcome::Complete => ("complete", "complete".to_string()),
            PollOutcome::Paused => ("paused", "paused by the request budget".to_string()),
            PollOutcome::Failed { reason } => ("failed-poll", format!("failed: {reason}")),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{class}\">{}</td></tr>",
            p.started.to_api_string() + "Z",
            p.duration_seconds,
            p.hours_read,
            p.hours_failed,
            p.events,
            escape(&outcome)
        );
    }
    if polls.is_empty() {
        out.push_str("<tr><td colspan=\"6\">No poll finished yet.</td></tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

/// One row per UTC day, one cell per hour (column = hour of the day).
fn hours(out: &mut String, grid: Option<&HourGrid>) {
    out.push_str("<section id=\"hours\"><h2>Hours of the activity log</h2>");
    let Some(grid) = grid else {
        out.push_str("<p>No poll finished yet.</p></section>\n");
        return;
    };
    let count = |s: HourState| grid.states.iter().filter(|x| **x == s).count();
    let _ = write!(
        out,
        "<p><span id=\"hours-read\">{}</span> read, <span id=\"hours-not-yet-read\">{}</span> \
         not yet read, <span id=\"hours-failed\">{}</span> failed \
         (<span class=\"read\">&nbsp;&nbsp;</span> read, \
         <span class=\"not-yet-read\">&nbsp;&nbsp;</span> not yet read, \
         <span class=\"failed\">&nbsp;&nbsp;</span> failed).</p>\
         <table class=\"grid\"><thead><tr><th>UTC day</th>",
        count(HourState::Read),
        count(HourState::NotYetRead),
        count(HourState::Failed)
    );
    for h in 0..24 {
        let _ = write!(out, "<th>{h:02}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let first = grid.first.0;
    let first_day = first.div_euclid(24);
    let last_day = (first + grid.states.len() as i64 - 1).div_euclid(24);
    for day in first_day..=last_day {
        let date = UnixMillis(day * 86_400_000).to_api_string();
        let _ = write!(out, "<tr><th>{}</th>", &date[..10.min(date.len())]);
        for hour in day * 24..day * 24 + 24 {
            let state = usize::try_from(hour - first)
                .ok()
                .and_then(|i| grid.states.get(i));
            match state {
                Some(s) => {
                    let class = match s {
                        HourState::Read => "read",
                        HourState::NotYetRead => "not-yet-read",
                        HourState::Failed => "failed",
                    };
                    let _ = write!(
                        out,
                        "<td class=\"{class}\" title=\"{:02}h {class}\"></td>",
                        hour.rem_euclid(24)
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

fn reports(out: &mut String, top: &[TopReport], day_end: UnixMillis) {
    let _ = write!(
        out,
        "<section id=\"reports\"><h2>Top reports of the last day</h2><p>Views (ViewReport \
         events) in the 24 UTC hours ending with the hour of {}.</p><table><thead><tr>\
         <th>Report</th><th>Workspace</th><th>Views</th></tr></thead><tbody>",
        day_end.to_api_string() + "Z"
    );
    for r in top {
        let _ = write!(
            out,
            "<tr data-report-id=\"{}\"><td title=\"{}\">{}</td><td title=\"{}\">{}</td>\
             <td class=\"num views\">{}</td></tr>",
            escape(&cut(&r.report_id)),
            escape(&cut(&r.report_id)),
            escape(&cut(or_id(&r.report_name, &r.report_id))),
            escape(&cut(&r.workspace_id)),
            escape(&cut(or_id(&r.workspace_name, &r.workspace_id))),
            r.views
        );
    }
    if top.is_empty() {
        out.push_str("<tr><td colspan=\"3\">No report view in the last day.</td></tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

fn or_id<'a>(name: &'a str, id: &'a str) -> &'a str {
    if name.is_empty() {
        id
    } else {
        name
    }
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(NAME_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::powerbi::window::UtcHour;

    const HOUR_MS: i64 = 3_600_000;

    /// Every part at its largest: 20 failed polls with the longest reason, all of it escaped
    /// 4- to 6-fold; 28 days of hours starting at 23h (29 rows); 10 reports whose names and ids
    /// are long and all quotes.
    fn worst_case() -> StatusData {
        let first = UtcHour(20_000 * 24 + 23);
        let status = SourceStatus {
            budget_remaining: 200,
            budget_limit: 200,
            polls: (0..crate::source::POLLS_KEPT)
                .map(|i| PollRecord {
                    started: UnixMillis(i as i64 * 60_000),
                    duration_seconds: 123_456.7,
                    hours_read: u32::MAX,
                    hours_failed: u32::MAX,
                    events: u64::MAX,
                    outcome: PollOutcome::Failed {
                        reason: "\"".repeat(crate::source::REASON_CHARS),
                    },
                })
                .collect(),
            hours: Some(HourGrid {
                first,
                states: vec![HourState::NotYetRead; 28 * 24],
            }),
            ..SourceStatus::default()
        };
        let long = "\"".repeat(4096);
        StatusData {
            source: Some(status),
            watermark: Some(UnixMillis(1)),
            processed: u64::MAX,
            top_reports: vec![
                TopReport {
                    report_id: long.clone(),
                    report_name: long.clone(),
                    workspace_id: long.clone(),
                    workspace_name: long.clone(),
                    views: u64::MAX,
                };
                TOP_REPORTS
            ],
            day_end: UnixMillis(first.0 * HOUR_MS),
        }
    }

    #[test]
    fn the_page_stays_under_its_bound_for_the_largest_input() {
        let page = render(&worst_case(), &"/\"".repeat(100), UnixMillis(0));
        assert!(
            page.len() < MAX_BYTES,
            "{} bytes, bound {MAX_BYTES}",
            page.len()
        );
        // 29 rows of 24 cells, 672 of them hours.
        assert_eq!(page.matches("class=\"not-yet-read\" title").count(), 672);
        let grid = &page[page.find("class=\"grid\"").unwrap()..];
        let body = &grid[grid.find("<tbody>").unwrap()..grid.find("</tbody>").unwrap()];
        assert_eq!(body.matches("<tr>").count(), 29);
        eprintln!("largest page: {} bytes", page.len());
    }

    #[test]
    fn names_and_reasons_are_escaped_and_states_get_their_class() {
        let mut data = worst_case();
        data.top_reports = vec![TopReport {
            report_id: "r1".into(),
            report_name: "<script>alert('x')</script> & \"co\"".into(),
            workspace_id: "w1".into(),
            workspace_name: String::new(),
            views: 7,
        }];
        let status = data.source.as_mut().unwrap();
        status.polls = vec![PollRecord {
            started: UnixMillis(0),
            duration_seconds: 1.0,
            hours_read: 2,
            hours_failed: 1,
            events: 30,
            outcome: PollOutcome::Failed {
                reason: "the API rejected the request (400): <b>".into(),
            },
        }];
        status.hours = Some(HourGrid {
            first: UtcHour(24),
            states: vec![HourState::Read, HourState::Failed, HourState::NotYetRead],
        });
        let page = render(&data, "/metrics", UnixMillis(0));
        assert!(!page.contains("<script"), "{page}");
        assert!(page
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;</td>"));
        // No workspace name: its id stands in.
        assert!(page.contains("<td title=\"w1\">w1</td>"));
        assert!(page.contains("failed: the API rejected the request (400): &lt;b&gt;"));
        assert!(page.contains(
            "<span id=\"hours-read\">1</span> read, <span id=\"hours-not-yet-read\">1</span> not yet read, <span id=\"hours-failed\">1</span> failed"
        ));
        assert_eq!(
            page.matches("<td class=\"failed\" title=\"01h failed\">")
                .count(),
            1
        );
        // One day (1970-01-02): hours 00..02 drawn, 21 empty cells.
        assert!(page.contains("<tr><th>1970-01-02</th>"));
        assert_eq!(page.matches("<td></td>").count(), 21);
    }
}
