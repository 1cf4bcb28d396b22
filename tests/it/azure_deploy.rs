//! The Azure Logs Ingestion template, `deploy/azure/logs-ingestion.json`: the table and the
//! rule's stream declare the same columns; every field of every fixture event, as a forwarded
//! row (`Id` renamed `EventId`, `TimeGenerated` added), is a declared column of a compatible
//! type, so nothing is dropped silently; no reserved column; the rule sends its stream into the
//! table; the exporter's identity gets Monitoring Metrics Publisher on the rule.
//!
//! Static checks only: the template is parsed with serde_json, nothing is deployed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

const TEMPLATE: &str = "deploy/azure/logs-ingestion.json";
const TABLE: &str = "PowerBIActivity_CL";
const STREAM: &str = "Custom-PowerBIActivity_CL";
const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";
/// Log Analytics reserves these (reference §10, plus columns the service fills itself).
const RESERVED: [&str; 13] = [
    "id",
    "_ResourceId",
    "_SubscriptionId",
    "_ResourceGroup",
    "_ItemId",
    "_TimeReceived",
    "TenantId",
    "Type",
    "UniqueId",
    "Title",
    "BilledSize",
    "IsBillable",
    "InvalidTimeGenerated",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let path = root().join(TEMPLATE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE} is not JSON: {e}"))
}

/// The one resource of `kind` in the template.
fn resource<'a>(template: &'a Value, kind: &str) -> &'a Value {
    let found: Vec<&Value> = template["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{TEMPLATE}: no resources array"))
        .iter()
        .filter(|r| r["type"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "{TEMPLATE}: expected one {kind} resource");
    found[0]
}

/// Column name → type, lower-cased (the Tables API spells `dateTime`, DCRs `datetime`).
fn columns(list: &Value, what: &str) -> BTreeMap<String, String> {
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("{TEMPLATE}: {what} has no columns array"));
    let mut out = BTreeMap::new();
    for column in list {
        let name = column["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{TEMPLATE}: {what}: a column without a name: {column}"));
        let kind = column["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{TEMPLATE}: {what}: column {name} has no type"));
        let before = out.insert(name.to_string(), kind.to_ascii_lowercase());
        assert!(
            before.is_none(),
            "{TEMPLATE}: {what}: column {name} declared twice"
        );
    }
    out
}

fn table_columns(template: &Value) -> BTreeMap<String, String> {
    let table = resource(template, "Microsoft.OperationalInsights/workspaces/tables");
    assert_eq!(
        table["properties"]["schema"]["name"].as_str(),
        Some(TABLE),
        "{TEMPLATE}: the table's schema name"
    );
    columns(
        &table["properties"]["schema"]["columns"],
        "table PowerBIActivity_CL",
    )
}

fn stream_columns(template: &Value) -> BTreeMap<String, String> {
    let rule = resource(template, "Microsoft.Insights/dataCollectionRules");
    columns(
        &rule["properties"]["streamDeclarations"][STREAM]["columns"],
        "stream declaration Custom-PowerBIActivity_CL",
    )
}

#[test]
fn the_table_and_the_stream_declare_the_same_columns_with_the_same_types() {
    let template = template();
    let table = table_columns(&template);
    let stream = stream_columns(&template);
    let mut problems = Vec::new();
    for (name, kind) in &table {
        match stream.get(name) {
            None => problems.push(format!("{name} is in the table but not in the stream")),
            Some(s) if s != kind => problems.push(format!(
                "{name} is {kind} in the table but {s} in the stream"
            )),
            Some(_) => {}
        }
    }
    for name in stream.keys().filter(|n| !table.contains_key(*n)) {
        problems.push(format!("{name} is in the stream but not in the table"));
    }
    // Types each API accepts (the stream has no guid; keep both sides to the common set).
    for (name, kind) in &table {
        let known = [
            "string", "int", "long", "real", "boolean", "datetime", "dynamic",
        ];
        if !known.contains(&kind.as_str()) {
            problems.push(format!("{name} has type {kind}, not one both APIs accept"));
        }
    }
    assert!(
        problems.is_empty(),
        "{TEMPLATE}: table and stream disagree:\n  {}",
        problems.join("\n  ")
    );
    assert_eq!(
        table.get("TimeGenerated").map(String::as_str),
        Some("datetime"),
        "{TEMPLATE}: TimeGenerated must be a datetime column"
    );
    assert!(
        table.len() <= 500,
        "{TEMPLATE}: {} columns, over the 500 per table limit",
        table.len()
    );
}

#[test]
fn no_column_is_reserved_or_badly_named() {
    let template = template();
    let table = table_columns(&template);
    assert!(
        !table.contains_key("Id"),
        "{TEMPLATE}: declares an Id column: Id is reserved, rows carry EventId"
    );
    assert_eq!(
        table.get("EventId").map(String::as_str),
        Some("string"),
        "{TEMPLATE}: EventId (the event's Id) must be a string column"
    );
    for name in table.keys() {
        assert!(
            !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)),
            "{TEMPLATE}: column {name} is reserved in Log Analytics"
        );
        let ok = name.len() <= 45
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        assert!(
            ok,
            "{TEMPLATE}: column {name}: names are a letter then letters, digits or _, ≤ 45"
        );
    }
}

/// Every event object in a fixture file: API pages (`activityEventEntities`), JSON arrays,
/// JSON Lines, or a single event object.
fn events_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let documents: Vec<Value> = if path.extension().is_some_and(|e| e == "jsonl") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: a line is not JSON: {e}", path.display()))
            })
            .collect()
    } else {
        vec![serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))]
    };
    let mut events = Vec::new();
    for document in documents.into_iter().flat_map(example_bodies) {
        match document {
            Value::Object(ref page) if page.contains_key("activityEventEntities") => {
                events.extend(
                    page["activityEventEntities"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            Value::Array(items) => events.extend(items),
            other => events.push(other),
        }
    }
    // Non-objects ("not an event") are rejected by the exporter before forwarding.
    events.retain(Value::is_object);
    events
}

/// The row the exporter sends for `event`.
fn row(event: &Map<String, Value>) -> Map<String, Value> {
    let mut row = event.clone();
    if let Some(id) = row.remove("Id") {
        row.insert("EventId".to_string(), id);
    }
    row.insert(
        "TimeGenerated".to_string(),
        Value::String("2026-11-20T09:02:51Z".to_string()),
    );
    row
}

/// Whether a JSON value lands in a column of `kind` (null fits anything).
fn fits(value: &Value, kind: &str) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(_) => kind == "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => matches!(kind, "int" | "long" | "real"),
        Value::Number(_) => kind == "real",
        Value::String(_) => matches!(kind, "string" | "datetime"),
        Value::Array(_) | Value::Object(_) => kind == "dynamic",
    }
}

/// A file of Microsoft's published examples (`tests/fixtures/microsoft/`, the swagger's
/// `x-ms-examples`: example name → parameters and responses) stands for the response bodies
/// it holds; any other document stands for itself.
fn example_bodies(document: Value) -> Vec<Value> {
    let is_examples = document.as_object().is_some_and(|examples| {
        !examples.is_empty() && examples.values().all(|e| e.get("responses").is_some())
    });
    if !is_examples {
        return vec![document];
    }
    let Value::Object(examples) = document else {
        unreachable!("checked above")
    };
    examples
        .into_values()
        .filter_map(|mut example| example["responses"]["200"].get_mut("body").map(Value::take))
        .collect()
}

/// Fixture files holding events: everything under `tests/fixtures` but the fuzz regressions,
/// which are deliberately malformed inputs (invalid UTF-8, raw NULs in keys), not events, and
/// Microsoft's admin/groups examples, which are workspaces, and the pinned state files
/// (`state/v1/state.json`: the exporter's own saved state; the archive beside it is events).
fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "fuzz-regressions") {
                fixture_files(&path, out);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n == "get-groups-as-admin.examples.json" || n == "state.json")
        {
            continue;
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonl")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_field_of_every_fixture_event_is_a_declared_column() {
    let template = template();
    let stream = stream_columns(&template);
    let fixtures = root().join("tests/fixtures");
    let mut files = Vec::new();
    fixture_files(&fixtures, &mut files);
    files.sort();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("replay/2026-11-20T09.json")),
        "the reference example page (replay/2026-11-20T09.json) is missing from tests/fixtures"
    );
    let mut problems = Vec::new();
    let mut events = 0;
    for file in &files {
        let shown = file.strip_prefix(root()).unwrap_or(file).display();
        let in_file = events_in(file);
        assert!(!in_file.is_empty(), "{shown}: no events found");
        for event in &in_file {
            events += 1;
            let row = row(event.as_object().unwrap());
            for (key, value) in &row {
                match stream.get(key) {
                    None => problems.push(format!(
                        "{shown}: column {key} is not declared (event {}), so Log Analytics \
                         would drop it",
                        event["Id"]
                    )),
                    Some(kind) if !fits(value, kind) => problems.push(format!(
                        "{shown}: column {key} is declared {kind} but event {} has {value}",
                        event["Id"]
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{TEMPLATE} does not cover the fixtures:\n  {}",
        problems.join("\n  ")
    );
    assert!(events >= 20, "only {events} fixture events found");
}

#[test]
fn the_data_flow_sends_the_declared_stream_into_the_table() {
    let template = template();
    let rule = resource(&template, "Microsoft.Insights/dataCollectionRules");
    let properties = &rule["properties"];
    let declared: Vec<&String> = properties["streamDeclarations"]
        .as_object()
        .expect("streamDeclarations")
        .keys()
        .collect();
    assert_eq!(declared, [STREAM], "{TEMPLATE}: declared streams");
    let flows = properties["dataFlows"].as_array().expect("dataFlows");
    assert_eq!(flows.len(), 1, "{TEMPLATE}: one data flow");
    let flow = &flows[0];
    assert_eq!(
        flow["streams"],
        serde_json::json!([STREAM]),
        "{TEMPLATE}: flow streams"
    );
    assert_eq!(
        flow["outputStream"].as_str(),
        Some(format!("Custom-{TABLE}").as_str()),
        "{TEMPLATE}: the flow must write to the table"
    );
    assert_eq!(
        flow["transformKql"].as_str(),
        Some("source"),
        "{TEMPLATE}: transform"
    );
    let destinations: Vec<&str> = properties["destinations"]["logAnalytics"]
        .as_array()
        .expect("destinations.logAnalytics")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    for d in flow["destinations"].as_array().expect("flow destinations") {
        let d = d.as_str().unwrap();
        assert!(
            destinations.contains(&d),
            "{TEMPLATE}: flow destination {d} is not a declared destination"
        );
    }
    // The table has to exist before the rule is created (InvalidOutputTable otherwise).
    let depends = rule["dependsOn"].to_string();
    assert!(
        depends.contains("workspaces/tables"),
        "{TEMPLATE}: the rule must depend on the table: {depends}"
    );
    assert!(
        properties["dataCollectionEndpointId"]
            .as_str()
            .is_some_and(|s| s.contains("dataCollectionEndpoints")),
        "{TEMPLATE}: the rule must use the data collection endpoint"
    );
}

#[test]
fn the_exporter_identity_gets_monitoring_metrics_publisher_on_the_rule() {
    let template = template();
    let assignment = resource(&template, "Microsoft.Authorization/roleAssignments");
    let role = assignment["properties"]["roleDefinitionId"]
        .as_str()
        .unwrap_or_default();
    assert!(
        role.contains(MONITORING_METRICS_PUBLISHER),
        "{TEMPLATE}: the role assignment must grant Monitoring Metrics Publisher \
         ({MONITORING_METRICS_PUBLISHER}), not {role}"
    );
    let scope = assignment["scope"].as_str().unwrap_or_default();
    assert!(
        scope.contains("Microsoft.Insights/dataCollectionRules"),
        "{TEMPLATE}: the role must be scoped to the data collection rule, not {scope:?}"
    );
    assert_eq!(
        assignment["properties"]["principalId"].as_str(),
        Some("[parameters('principalId')]"),
        "{TEMPLATE}: the principal comes from the principalId parameter"
    );
    assert!(
        template["parameters"]["principalId"].is_object(),
        "{TEMPLATE}: no principalId parameter"
    );
}

#[test]
fn the_outputs_are_what_the_exporter_flags_take() {
    let template = template();
    let outputs = &template["outputs"];
    for name in ["logsIngestionEndpoint", "dcrImmutableId", "streamName"] {
        assert!(
            outputs[name]["value"].is_string(),
            "{TEMPLATE}: no output {name}"
        );
    }
    assert!(
        outputs["logsIngestionEndpoint"]["value"]
            .as_str()
            .unwrap()
            .contains("logsIngestion.endpoint"),
        "{TEMPLATE}: logsIngestionEndpoint must be the endpoint's logsIngestion.endpoint"
    );
    assert!(
        outputs["dcrImmutableId"]["value"]
            .as_str()
            .unwrap()
            .contains("immutableId"),
        "{TEMPLATE}: dcrImmutableId must be the rule's immutableId"
    );
    assert_eq!(
        template["variables"]["streamName"].as_str(),
        Some(STREAM),
        "{TEMPLATE}: streamName"
    );
    let readme = std::fs::read_to_string(root().join("deploy/azure/README.md"))
        .expect("deploy/azure/README.md");
    for flag in [
        "--logs-ingestion.endpoint",
        "--logs-ingestion.dcr-id",
        "--logs-ingestion.stream",
    ] {
        assert!(
            readme.contains(flag),
            "deploy/azure/README.md does not mention {flag}"
        );
    }
}
