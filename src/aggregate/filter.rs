//! Scoping filters applied at collection time: which workspaces, users and activities count.
//!
//! Invariants:
//! - a filtered event is never lost silently: the aggregator counts it under
//!   `powerbi_events_filtered_total{reason}` with the [`FilterReason`] returned here;
//! - patterns are regular expressions anchored at both ends, as in Prometheus relabelling;
//!   user patterns ignore case (UPNs are case-insensitive);
//! - workspace include/exclude patterns match the workspace id or its name; events without a
//!   workspace (tenant-level activities such as tenant-setting changes) are never dropped by
//!   workspace filters, because they are what security teams watch most.

use regex::{Regex, RegexBuilder};

use crate::decode::ActivityEvent;

/// Why an event was left out; the `reason` label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterReason {
    Workspace,
    PersonalWorkspace,
    User,
    ServicePrincipal,
    Activity,
}

impl FilterReason {
    pub const ALL: [FilterReason; 5] = [
        FilterReason::Activity,
        FilterReason::PersonalWorkspace,
        FilterReason::ServicePrincipal,
        FilterReason::User,
        FilterReason::Workspace,
    ];

    /// Position in [`FilterReason::ALL`].
    pub fn index(self) -> usize {
        FilterReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::Workspace => "workspace",
            FilterReason::PersonalWorkspace => "personal_workspace",
            FilterReason::User => "user",
            FilterReason::ServicePrincipal => "service_principal",
            FilterReason::Activity => "activity",
        }
    }
}

/// The patterns as written (for configuration and `check-config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub include_workspaces: Vec<String>,
    pub exclude_workspaces: Vec<String>,
    pub exclude_personal_workspaces: bool,
    pub exclude_users: Vec<String>,
    pub exclude_service_principals: bool,
    pub include_activities: Vec<String>,
    pub exclude_activities: Vec<String>,
}

impl FilterSpec {
    pub fn is_empty(&self) -> bool {
        *self == FilterSpec::default()
    }
}

/// Compiled filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    include_workspaces: Vec<Regex>,
    exclude_workspaces: Vec<Regex>,
    exclude_personal: bool,
    exclude_users: Vec<Regex>,
    exclude_service_principals: bool,
    include_activities: Vec<Regex>,
    exclude_activities: Vec<Regex>,
}

/// Compiles one anchored pattern; the error names the pattern and what is wrong with it.
pub fn compile(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(ignore_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{pattern:?} is not a valid regular expression: {e}"))
}

impl Filters {
    /// Compiles every pattern, reporting each bad one.
    pub fn new(spec: &FilterSpec) -> Result<Filters, Vec<String>> {
        let mut errors = Vec::new();
        let mut all = |patterns: &[String], ignore_case: bool| -> Vec<Regex> {
            patterns
                .iter()
                .filter_map(|p| compile(p, ignore_case).map_err(|e| errors.push(e)).ok())
                .collect()
        };
        let filters = Filters {
            include_workspaces: all(&spec.include_workspaces, false),
            exclude_workspaces: all(&spec.exclude_workspaces, false),
            exclude_personal: spec.exclude_personal_workspaces,
            exclude_users: all(&spec.exclude_users, true),
            exclude_service_principals: spec.exclude_service_principals,
            include_activities: all(&spec.include_activities, false),
            exclude_activities: all(&spec.exclude_activities, false),
        };
        if errors.is_empty() {
            Ok(filters)
        } else {
            Err(errors)
        }
    }

    /// Why `ev` is left out, or `None` when it counts.
    pub fn check(&self, ev: &ActivityEvent<'_>) -> Option<FilterReason> {
        let activity = ev.activity.as_str();
        if (!self.include_activities.is_empty() && !any(&self.include_activities, activity))
            || any(&self.exclude_activities, activity)
        {
            return Some(FilterReason::Activity);
        }
        if let Some(id) = &ev.workspace_id {
            let name = ev.workspace_name.as_deref().unwrap_or("");
            let matches = |set: &[Regex]| any(set, id.as_str()) || any(set, name);
            if (!self.include_workspaces.is_empty() && !matches(&self.include_workspaces))
                || matches(&self.exclude_workspaces)
            {
                return Some(FilterReason::Workspace);
            }
            if self.exclude_personal && is_personal(name) {
                return Some(FilterReason::PersonalWorkspace);
            }
        }
        let user = ev.user_id.as_deref().unwrap_or("");
        if self.exclude_service_principals && is_service_principal(user, ev.user_type) {
            return Some(FilterReason::ServicePrincipal);
        }
        if !user.is_empty() && any(&self.exclude_users, user) {
            return Some(FilterReason::User);
        }
        None
    }
}

fn any(set: &[Regex], s: &str) -> bool {
    set.iter().any(|r| r.is_match(s))
}

/// Personal workspaces appear in the activity log as "My workspace" or, for other users'
/// workspaces seen by admins, `PersonalWorkspace <name>`. (With the inventory, their type.)
pub fn is_personal(workspace_name: &str) -> bool {
    workspace_name.eq_ignore_ascii_case("my workspace")
        || workspace_name.starts_with("PersonalWorkspace ")
}

/// Service principals: `UserType` 5 (application) or 6 (service principal), or a `UserId`
/// that is a bare GUID (an app or object id, not a UPN).
pub fn is_service_principal(user_id: &str, user_type: Option<i64>) -> bool {
    matches!(user_type, Some(5 | 6)) || is_guid(user_id)
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_event;

    fn event(fields: &str) -> String {
        format!(r#"{{"Id":"a","CreationTime":"2026-11-20T10:00:00",{fields}}}"#)
    }

    fn reason(filters: &Filters, fields: &str) -> Option<&'static str> {
        let json = event(fields);
        filters
            .check(&decode_event(json.as_bytes()).unwrap())
            .map(FilterReason::as_str)
    }

    #[test]
    fn each_filter_names_its_reason() {
        let spec = FilterSpec {
            include_workspaces: vec!["Sales.*".into(), "w-keep".into()],
            exclude_workspaces: vec!["Sales Sandbox".into()],
            exclude_personal_workspaces: true,
            exclude_users: vec![r"svc-.*@contoso\.com".into()],
            exclude_service_principals: true,
            include_activities: vec![],
            exclude_activities: vec!["ViewTile|GetSnapshots".into()],
        };
        let f = Filters::new(&spec).unwrap();
        let ws = |id: &str, name: &str| {
            format!(r#""Activity":"ViewReport","WorkspaceId":"{id}","WorkSpaceName":"{name}""#)
        };
        assert_eq!(reason(&f, &ws("w1", "Sales EMEA")), None);
        assert_eq!(reason(&f, &ws("w-keep", "Other")), None, "id matches");
        assert_eq!(reason(&f, &ws("w2", "Finance")), Some("workspace"));
        assert_eq!(reason(&f, &ws("w3", "Sales Sandbox")), Some("workspace"));
        assert_eq!(reason(&f, &ws("w4", "Sales")), None);
        assert_eq!(
            reason(&f, r#""Activity":"ViewReport""#),
            None,
            "tenant-level"
        );
        assert_eq!(reason(&f, r#""Activity":"GetSnapshots""#), Some("activity"));
        assert_eq!(reason(&f, r#""Activity":"ViewTiles""#), None, "anchored");
        let f = Filters::new(&FilterSpec {
            exclude_personal_workspaces: true,
            exclude_users: vec![r"svc-.*@contoso\.com".into()],
            exclude_service_principals: true,
            include_activities: vec!["View.*".into()],
            ..FilterSpec::default()
        })
        .unwrap();
        assert_eq!(
            reason(&f, &ws("w5", "My workspace")),
            Some("personal_workspace")
        );
        assert_eq!(reason(&f, r#""Activity":"ExportReport""#), Some("activity"));
        assert_eq!(
            reason(
                &f,
                r#""Activity":"ViewReport","UserId":"SVC-etl@Contoso.com""#
            ),
            Some("user")
        );
        assert_eq!(
            reason(
                &f,
                r#""Activity":"ViewReport","UserId":"1f0c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b""#
            ),
            Some("service_principal")
        );
        assert_eq!(
            reason(
                &f,
                r#""Activity":"ViewReport","UserId":"app@x","UserType":6"#
            ),
            Some("service_principal")
        );
        assert_eq!(
            reason(
                &f,
                r#""Activity":"ViewReport","UserId":"ana@contoso.com","UserType":0"#
            ),
            None
        );
    }

    #[test]
    fn bad_patterns_are_all_reported() {
        let errors = Filters::new(&FilterSpec {
            exclude_users: vec!["(".into(), "ok".into(), "[z-a]".into()],
            ..FilterSpec::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("\"(\" is not a valid regular expression"));
    }
}
