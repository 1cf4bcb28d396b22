//! The live source's self metrics: its health ([`SourceStatus`]) as metric families, contributed
//! at scrape time through the [`Collector`] trait.
//!
//! Invariants:
//! - every reason of `powerbi_auth_errors_total` and `powerbi_inventory_errors_total` is shown,
//!   0 until it happens, taken from the enums that produce them (no second list);
//! - a value the source does not know yet (no successful poll, no sweep) is left out rather than
//!   shown as 0.

use super::powerbi::inventory::InventoryErrorKind;
use super::powerbi::window::{LookbackState, Purpose};
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
        if let Some(schedule) = &self.schedule {
            out.push(
                &LOOKBACK_HOURS,
                LookbackState::ALL.iter().map(|state| {
                    let n = schedule.hours.get(state).copied().unwrap_or(0);
                    (vec![state.as_str().to_string()], n as f64)
                }),
            );
            out.push(
                &API_REQUESTS_PLANNED,
                one(schedule.planned_next_hour as f64),
            );
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
        let unknown = Purpose::Unknown.as_str().to_string();
        out.push(
            &API_REQUESTS,
            api.requests
                .iter()
                .map(|(key, n)| {
                    let labels = vec![key.code.clone(), key.purpose.as_str().to_string()];
                    (labels, *n as f64)
                })
                .chain(
                    api.before_purposes
                        .iter()
                        .map(|(code, n)| (vec![code.clone(), unknown.clone()], *n as f64)),
                ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::UnixMillis;
    use crate::source::InventoryStatus;

    /// Every sample of `snapshot` as `name{label,…} value`, in the snapshot's order.
    fn lines(snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .families
            .iter()
            .flat_map(|f| {
                f.samples.iter().map(move |s| {
                    format!(
                        "{}{{{}}} {}",
                        f.family.name,
                        s.labels().collect::<Vec<_>>().join(","),
                        s.value
                    )
                })
            })
            .collect()
    }

    #[test]
    fn a_status_shows_every_reason_and_leaves_out_what_it_does_not_know() {
        let mut status = SourceStatus {
            up: true,
            poll_duration_seconds: 1.5,
            budget_remaining: 7,
            token_expiry: Some(UnixMillis(2_000)),
            inventory: Some(InventoryStatus {
                last_success: None,
                errors: [("throttled".to_string(), 2)].into(),
            }),
            ..SourceStatus::default()
        };
        status.api.count(Purpose::Current, "200");
        status.api.count(Purpose::Current, "200");
        status.api.count(Purpose::Inventory, "200");
        status.api.before_purposes.insert("200".into(), 5);
        status.schedule = Some(crate::source::ScheduleStatus {
            hours: [(LookbackState::Settled, 20), (LookbackState::Due, 2)].into(),
            planned_next_hour: 17,
        });
        status.api.auth_errors.insert("rejected".into(), 1);
        let mut snapshot = Snapshot::default();
        status.collect(&mut snapshot);
        snapshot.sort_families();
        let mut got = lines(&snapshot);
        got.sort();
        let mut want = vec![
            "powerbi_up{} 1",
            "powerbi_inventory_errors_total{auth} 0",
            "powerbi_inventory_errors_total{budget} 0",
            "powerbi_inventory_errors_total{http_error} 0",
            "powerbi_inventory_errors_total{invalid_response} 0",
            "powerbi_inventory_errors_total{throttled} 2",
            "powerbi_inventory_errors_total{timeout} 0",
            "powerbi_poll_duration_seconds{} 1.5",
            "powerbi_api_requests_total{200,current} 2",
            "powerbi_api_requests_total{200,inventory} 1",
            "powerbi_api_requests_total{200,unknown} 5",
            "powerbi_lookback_hours{settled} 20",
            "powerbi_lookback_hours{due} 2",
            "powerbi_lookback_hours{never_read} 0",
            "powerbi_lookback_hours{failed} 0",
            "powerbi_api_requests_planned_next_hour{} 17",
            "powerbi_api_throttled_total{} 0",
            "powerbi_api_budget_remaining{} 7",
            "powerbi_api_foreign_continuations_total{} 0",
            "powerbi_api_bad_continuations_total{} 0",
            "powerbi_api_retry_after_clamped_total{} 0",
            "powerbi_auth_errors_total{bad_response} 0",
            "powerbi_auth_errors_total{invalid_client} 0",
            "powerbi_auth_errors_total{rejected} 1",
            "powerbi_auth_errors_total{unreachable} 0",
            "powerbi_auth_errors_total{untrusted_certificate} 0",
            "powerbi_credential_expiry_timestamp_seconds{token} 2",
            "powerbi_initial_lookback_hours_remaining{} 0",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn the_reason_lists_are_the_kinds_the_errors_have() {
        use crate::azure::auth::AuthError;
        use crate::source::powerbi::inventory::InventoryError;
        let auth = [
            AuthError::InvalidClient { code: "x".into() },
            AuthError::Rejected {
                code: "x".into(),
                description: "y".into(),
            },
            AuthError::Unreachable("x".into()),
            AuthError::UntrustedCertificate("x".into()),
            AuthError::BadResponse { status: 500 },
        ];
        let mut reasons: Vec<_> = auth.iter().map(AuthError::reason).collect();
        reasons.sort();
        let all: Vec<_> = AuthErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(reasons, all);
        let inventory = [
            InventoryError::Throttled {
                retry_after: std::time::Duration::ZERO,
            },
            InventoryError::Budget(UnixMillis(0)),
            InventoryError::Timeout("x".into()),
            InventoryError::Http(500),
            InventoryError::Invalid("x".into()),
            InventoryError::Auth("x".into()),
        ];
        let mut reasons: Vec<_> = inventory.iter().map(InventoryError::reason).collect();
        reasons.sort();
        let all: Vec<_> = InventoryErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(reasons, all);
    }
}
