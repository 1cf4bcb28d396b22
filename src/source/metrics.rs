//! The live source's self metrics: its health ([`SourceStatus`]) as metric families, contributed
//! at scrape time through the [`Collector`] trait.
//!
//! Invariants:
//! - every reason of `powerbi_auth_errors_total` and `powerbi_inventory_errors_total` is shown,
//!   0 until it happens, taken from the enums that produce them (no second list);
//! - a value the source does not know yet (no successful poll, no sweep) is left out rather than
//!   shown as 0.

use super::powerbi::inventory::InventoryErrorKind;
use super::SourceStatus;
use crate::azure::auth::AuthErrorKind;
use crate::catalogue::{self, Collector, Snapshot};

/// A sample without labels.
fn one(value: f64) -> [(Vec<String>, f64); 1] {
    [(Vec::new(), value)]
}

impl Collector for SourceStatus {
    fn collect(&self, out: &mut Snapshot) {
        use catalogue::*;
        out.push(&UP, one(if self.up { 1.0 } else { 0.0 }));
        self.collect_inventory(out);
        if let Some(t) = self.last_success {
            out.push(&LAST_POLL_SUCCESS, one(t.as_secs_f64()));
        }
        out.push(&POLL_DURATION, one(self.poll_duration_seconds));
        self.collect_api(out);
        let expiries = [
            ("certificate", self.certificate_expiry),
            ("token", self.token_expiry),
        ];
        out.push(
            &CREDENTIAL_EXPIRY,
            expiries
                .iter()
                .filter_map(|(kind, t)| Some((vec![kind.to_string()], t.as_ref()?.as_secs_f64()))),
        );
        if let Some(age) = self.sweep_age_seconds {
            out.push(&SWEEP_AGE, one(age));
        }
        out.push(
            &INITIAL_LOOKBACK_REMAINING,
            one(self.initial_lookback_hours_remaining as f64),
        );
    }
}

impl SourceStatus {
    /// The inventory's last success and errors by reason, when the inventory is read.
    fn collect_inventory(&self, out: &mut Snapshot) {
        use catalogue::*;
        let Some(inv) = &self.inventory else {
            return;
        };
        if let Some(t) = inv.last_success {
            out.push(&INVENTORY_LAST_SUCCESS, one(t.as_secs_f64()));
        }
        out.push(
            &INVENTORY_ERRORS,
            InventoryErrorKind::ALL.iter().map(|kind| {
                let n = inv.errors.get(kind.as_str()).copied().unwrap_or(0);
                (vec![kind.as_str().to_string()], n as f64)
            }),
        );
    }

    /// The Activity Events API's requests, throttling, budget, continuations and auth errors.
    fn collect_api(&self, out: &mut Snapshot) {
        use catalogue::*;
        let api = &self.api;
        out.push(
            &API_REQUESTS,
            api.requests
                .iter()
                .map(|(code, n)| (vec![code.clone()], *n as f64)),
        );
        out.push(&API_THROTTLED, one(api.throttled as f64));
        out.push(&API_BUDGET_REMAINING, one(self.budget_remaining as f64));
        out.push(
            &API_FOREIGN_CONTINUATIONS,
            one(api.foreign_continuations as f64),
        );
        out.push(&API_BAD_CONTINUATIONS, one(api.bad_continuations as f64));
        out.push(
            &API_RETRY_AFTER_CLAMPED,
            one(api.retry_after_clamped as f64),
        );
        out.push(
            &AUTH_ERRORS,
            AuthErrorKind::ALL.iter().map(|kind| {
                let n = api.auth_errors.get(kind.as_str()).copied().unwrap_or(0);
                (vec![kind.as_str().to_string()], n as f64)
            }),
        );
    }
}
