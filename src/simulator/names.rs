//! Invented names for the simulated tenant (contoso/fabrikam style, as in Microsoft's docs).

const WORKSPACES: &[&str] = &[
    "Sales Analytics",
    "Finance Reporting",
    "HR Insights",
    "Operations",
    "Marketing",
    "Supply Chain",
    "Executive",
    "IT Service Desk",
    "Customer Success",
    "Product Analytics",
    "Procurement",
    "Legal & Compliance",
];

const REPORTS: &[&str] = &[
    "Pipeline Review",
    "Revenue Overview",
    "Headcount",
    "Monthly P&L",
    "KPI Dashboard",
    "Churn Analysis",
    "Campaign Performance",
    "Inventory Levels",
    "Ticket Backlog",
    "Executive Overview",
    "Cash Flow",
    "Attrition Trends",
    "Forecast Accuracy",
    "Supplier Scorecard",
    "Regional Sales",
    "Budget vs Actual",
    "Customer 360",
    "Web Traffic",
    "Contract Renewals",
    "SLA Compliance",
    "Margin Analysis",
    "Hiring Funnel",
    "Open Orders",
    "Product Usage",
];

const FIRST: &[&str] = &[
    "priya", "alex", "jordan", "maria", "chen", "fatima", "lucas", "amara", "noah", "sofia",
    "kenji", "olga", "diego", "hana", "omar", "ines", "liam", "zara", "mateo", "yuki",
];

const LAST: &[&str] = &[
    "patel", "kim", "lee", "garcia", "wang", "khan", "silva", "okafor", "smith", "rossi", "tanaka",
    "ivanova", "lopez", "sato", "haddad", "costa", "murphy", "ahmed", "fischer", "novak",
];

/// Workspace names; past the list, numbered.
pub fn workspace(i: usize) -> String {
    match WORKSPACES.get(i) {
        Some(n) => n.to_string(),
        None => format!("Team {}", i + 1),
    }
}

/// Report names cycle through the list with a suffix once it is used up.
pub fn report(i: usize) -> String {
    let base = REPORTS[i % REPORTS.len()];
    match i / REPORTS.len() {
        0 => base.to_string(),
        n => format!("{base} {}", n + 1),
    }
}

/// User principal names; every 25th user is an external guest.
pub fn user(i: usize) -> String {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let n = i / (FIRST.len() * LAST.len());
    let suffix = if n == 0 { String::new() } else { n.to_string() };
    if i % 25 == 24 {
        format!("{first}.{last}{suffix}@fabrikam.com")
    } else {
        format!("{first}.{last}{suffix}@contoso.com")
    }
}
