//! The exporter's own reads of the activity log (`ExportActivityEvents`) are left out of the
//! usage families, whichever identifier the log records for the caller.
//!
//! Microsoft does not document which identifier a service principal or a managed identity gets
//! as `UserId` in these records: the Office 365 Management Activity API common schema
//! (MicrosoftDocs/office-365-management-api, `office-365-management-activity-api-schema.md`)
//! calls `UserId` "the UPN of the user who performed the action", `UserKey` "an alternative
//! ID", and has `UserType` 5 (Application) and 6 (ServicePrincipal); the Power BI REST
//! reference's examples show users only. Public reports name the service principal's object
//! id (MicrosoftDocs/powerbi-docs#1586) or its application id. So the exporter matches both:
//! the configured client id and the `appid`/`azp` and `oid` claims of its own access token —
//! for a system-assigned managed identity, which has no configured client id, the token's
//! claims are the only way to know itself.

use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};

use crate::support::*;

/// Another service principal's export, which is usage like any other.
const OTHER_APP: &str = "7d3e1a2b-0c4f-4e5d-9a8b-112233445566";

/// A log with three `ExportActivityEvents`: by the exporter's application id, by its service
/// principal's object id (in upper case), and by another application.
fn log(sim: &ApiConfig) -> Timeline {
    let tenant = Tenant::new(TenantSpec {
        seed: 3,
        workspaces: 2,
        users: 5,
    });
    let now = UnixMillis::now();
    let mut timeline = Timeline::new(tenant, 3, 0.0, Lag::default(), now);
    let at = UnixMillis(now.0 - 60_000);
    for (i, user) in [
        sim.client_id.clone(),
        sim.principal_object_id.to_uppercase(),
        OTHER_APP.to_string(),
    ]
    .iter()
    .enumerate()
    {
        let event = serde_json::json!({
            "Id": format!("0e0e0e0e-0000-4000-8000-{i:012}"), "CreationTime": at.to_api_string(),
            "Activity": "ExportActivityEvents", "UserId": user, "IsSuccess": true,
        });
        timeline.push(at, at, event.to_string().into_bytes());
    }
    timeline
}

fn wait_for_three(e: &Exporter) -> std::collections::BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = e.scrape();
        if s.get("powerbi_events_processed_total") == Some(&3.0)
            && s.get("powerbi_up") == Some(&1.0)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "three events not read: {s:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_own_two_filtered(s: &std::collections::BTreeMap<String, f64>) {
    assert_eq!(
        s[r#"powerbi_events_filtered_total{reason="own_export"}"#], 2.0,
        "by application id and by object id"
    );
    assert_eq!(
        s[r#"powerbi_activity_events_total{workspace_id="",activity="ExportActivityEvents"}"#], 1.0,
        "another application's export is usage"
    );
}

#[test]
fn own_exports_are_matched_by_application_id_and_by_object_id() {
    let rt = runtime();
    let sim = ApiConfig::default();
    let api = rt
        .block_on(SimulatedApi::start(sim.clone(), log(&sim), 0))
        .unwrap();
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.initial-lookback",
            "1h",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start_with_env(&args, &[("AZURE_CLIENT_SECRET", "simulated-secret")]);
    assert_own_two_filtered(&wait_for_three(&e));
}

/// A system-assigned managed identity: no client id is configured at all.
#[test]
fn a_managed_identity_without_a_client_id_knows_itself_from_its_token() {
    let rt = runtime();
    let sim = ApiConfig::default();
    let api = rt
        .block_on(SimulatedApi::start(sim.clone(), log(&sim), 0))
        .unwrap();
    let base = api.base_url();
    let imds = format!("{base}/metadata/identity/oauth2/token");
    let args = [
        "--powerbi.api-url",
        &base,
        "--azure.managed-identity",
        "--azure.imds-endpoint",
        &imds,
        "--powerbi.poll-interval",
        "1s",
        "--powerbi.initial-lookback",
        "1h",
    ];
    let e = Exporter::start_with_env(&args, &[]);
    assert_own_two_filtered(&wait_for_three(&e));
}
