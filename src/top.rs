//! `powerbi-exporter top`: the most used reports (or semantic models, dashboards, Fabric
//! items: `--item-type`) of a source, as an aligned table and CSV.
//!
//! This is the job the original usage script did (pandas `groupby().size()` over
//! `ViewReport`), done with the exporter's decoder and dedup: each event `Id` counted once,
//! names from the newest event, distinct viewers without keeping user ids.
//!
//! What is counted per item type ([`Subject`]): reports by their `ReportId` (as before
//! `--item-type`); semantic models by the views of reports built on them (`ViewReport` with
//! the model's `DatasetId`), as `powerbi_semantic_model_report_views_total` counts them; any
//! other type by the events about it under the item rule ([`crate::decode::item`]), of every
//! activity unless `--activity` names one.

use std::fmt::Write as _;

use hashbrown::{HashMap, HashSet};

use crate::aggregate::dedup::{Dedup, Seen};
use crate::decode::item::{self, ItemType};
use crate::decode::{ActivityEvent, EventSink, Rejection};
use crate::pipeline::DocumentSink;

/// A name and the `CreationTime` of the event that carried it.
#[derive(Debug, Clone, Default)]
struct Named {
    name: String,
    time: i64,
}

impl Named {
    fn update(&mut self, name: &str, time: i64) {
        if time >= self.time || self.name.is_empty() {
            self.time = time;
            if self.name != name {
                self.name = name.to_string();
            }
        }
    }
}

#[derive(Debug, Default)]
struct ReportTally {
    events: u64,
    users: HashSet<u64>,
    workspace_id: String,
    name: Named,
}

/// What a ranking counts: events of one activity (or all) about items of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub item_type: ItemType,
    /// Compared case-insensitively; `None`: every activity.
    pub activity: Option<String>,
}

impl Subject {
    /// `activity` or the type's default: `ViewReport` for reports and semantic models (views
    /// of reports built on the model), every activity for the other types.
    pub fn new(item_type: ItemType, activity: Option<&str>) -> Self {
        let default = match item_type {
            ItemType::Report | ItemType::SemanticModel => Some("ViewReport"),
            _ => None,
        };
        Subject {
            activity: activity.or(default).map(str::to_string),
            item_type,
        }
    }

    fn counts_views(&self) -> bool {
        self.activity
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("ViewReport"))
    }

    fn activity_matches(&self, ev: &ActivityEvent<'_>) -> bool {
        (self.activity.as_deref()).is_none_or(|a| ev.activity.as_str().eq_ignore_ascii_case(a))
    }

    /// The id and name of the item `ev` counts for, if it counts.
    fn item_of<'e>(&self, ev: &'e ActivityEvent<'_>) -> Option<(&'e str, Option<&'e str>)> {
        if !self.activity_matches(ev) {
            return None;
        }
        match self.item_type {
            ItemType::Report => {
                let report = ev.report_id.as_ref()?;
                Some((report.as_str(), ev.report_name.as_deref()))
            }
            ItemType::SemanticModel if self.counts_views() => {
                let model = item::viewed_model(ev)?;
                let name = ev.items.dataset.as_ref().and_then(|d| d.name.as_deref());
                Some((model, name))
            }
            _ => {
                let found = item::item_of(ev).filter(|i| i.item_type == self.item_type)?;
                Some((found.id, found.name))
            }
        }
    }

    /// The item type as a column header and in the summary: `SEMANTIC MODEL`, `semantic
    /// models`.
    pub fn noun(&self) -> String {
        self.item_type.as_str().replace('_', " ")
    }
}

/// Counts one activity per item.
#[derive(Debug)]
pub struct Ranking {
    subject: Subject,
    dedup: Dedup,
    reports: HashMap<String, ReportTally>,
    workspaces: HashMap<String, Named>,
    pub events_read: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// False when a live source could not read every hour of the period.
    pub complete: bool,
}

/// One row of the ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub rank: usize,
    pub workspace_id: String,
    pub workspace_name: String,
    pub item_id: String,
    pub item_name: String,
    pub events: u64,
    pub distinct_users: u64,
}

impl Ranking {
    pub fn new(subject: Subject, dedup_window: std::time::Duration) -> Self {
        Ranking {
            subject,
            dedup: Dedup::new(dedup_window),
            reports: HashMap::new(),
            workspaces: HashMap::new(),
            events_read: 0,
            duplicates: 0,
            rejected: 0,
            complete: true,
        }
    }

    /// The `limit` items with the most events, ties broken by users, then names and ids.
    pub fn rows(&self, limit: usize) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .reports
            .iter()
            .map(|(id, t)| Row {
                rank: 0,
                workspace_name: self
                    .workspaces
                    .get(&t.workspace_id)
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
                workspace_id: t.workspace_id.clone(),
                item_id: id.clone(),
                item_name: t.name.name.clone(),
                events: t.events,
                distinct_users: t.users.len() as u64,
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.events, b.distinct_users)
                .cmp(&(a.events, a.distinct_users))
                .then_with(|| (&a.item_name, &a.item_id).cmp(&(&b.item_name, &b.item_id)))
        });
        rows.truncate(limit);
        for (i, r) in rows.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        rows
    }
}

impl EventSink for Ranking {
    fn accept(&mut self, ev: &ActivityEvent<'_>) {
        self.events_read += 1;
        match self.dedup.check(ev.key, ev.time) {
            Seen::New => {}
            Seen::Duplicate => return self.duplicates += 1,
            Seen::OutsideWindow => return self.rejected += 1,
        }
        if let (Some(id), Some(name)) = (&ev.workspace_id, &ev.workspace_name) {
            self.workspaces
                .entry_ref(id.as_str())
                .or_default()
                .update(name, ev.time.0);
        }
        let Some((id, name)) = self.subject.item_of(ev) else {
            return;
        };
        let tally = self.reports.entry_ref(id).or_default();
        tally.events += 1;
        if let Some(user) = ev.user {
            tally.users.insert(user.0);
        }
        if let Some(ws) = &ev.workspace_id {
            if tally.workspace_id.is_empty() || ev.time.0 >= tally.name.time {
                tally.workspace_id = ws.to_string();
            }
        }
        if let Some(name) = name {
            tally.name.update(name, ev.time.0);
        }
    }

    fn reject(&mut self, _: Rejection) {
        self.events_read += 1;
        self.rejected += 1;
    }
}

impl DocumentSink for Ranking {
    fn source_status(&mut self, status: crate::source::SourceStatus) {
        self.complete = status.up;
    }
    fn replay_pass_started(&mut self, _pass: crate::source::replay::ReplayPass) {
        self.dedup.clear();
    }
}

/// Column headers of the two counts: views and viewers for `ViewReport`.
fn count_headers(subject: &Subject) -> (&'static str, &'static str) {
    if subject.counts_views() {
        ("VIEWS", "VIEWERS")
    } else {
        ("EVENTS", "USERS")
    }
}

/// The ranking as an aligned table; names fall back to ids when no event carried one.
pub fn table(rows: &[Row], subject: &Subject) -> String {
    let (events, users) = count_headers(subject);
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let ws = if r.workspace_name.is_empty() {
                r.workspace_id.clone()
            } else {
                r.workspace_name.clone()
            };
            let rep = if r.item_name.is_empty() {
                r.item_id.clone()
            } else {
                r.item_name.clone()
            };
            [
                r.rank.to_string(),
                ws,
                rep,
                r.events.to_string(),
                r.distinct_users.to_string(),
            ]
        })
        .collect();
    let item = subject.noun().to_uppercase();
    let header = ["RANK", "WORKSPACE", &item, events, users].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let pad = |i: usize| widths[i].saturating_sub(row[i].chars().count());
        let line = format!(
            "{}{}  {}{}  {}{}  {}{}  {}{}",
            row[0],
            " ".repeat(pad(0)),
            row[1],
            " ".repeat(pad(1)),
            row[2],
            " ".repeat(pad(2)),
            " ".repeat(pad(3)),
            row[3],
            " ".repeat(pad(4)),
            row[4]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The ranking as CSV (RFC 4180 quoting).
pub fn csv(rows: &[Row], subject: &Subject) -> String {
    let (events, users) = count_headers(subject);
    let item = subject.item_type.as_str();
    let mut out = format!(
        "rank,workspace_id,workspace_name,{item}_id,{item}_name,{},{}\n",
        events.to_lowercase(),
        if users == "VIEWERS" {
            "distinct_viewers"
        } else {
            "distinct_users"
        }
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.rank,
            csv_field(&r.workspace_id),
            csv_field(&r.workspace_name),
            csv_field(&r.item_id),
            csv_field(&r.item_name),
            r.events,
            r.distinct_users
        );
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("Monthly P&L"), "Monthly P&L");
        assert_eq!(csv_field("Sales, EMEA"), "\"Sales, EMEA\"");
        assert_eq!(csv_field("The \"Big\" One"), "\"The \"\"Big\"\" One\"");
    }
}
