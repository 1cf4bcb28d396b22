//! The people group: families `powerbi_user_sensitive_events_total` and
//! `powerbi_external_shares_total`, signals about people limited to what the operator asked
//! for: which activities are security-relevant, how a user is labelled (`--users.label`),
//! and which shares leave the tenant's domains.
//!
//! Invariants:
//! - a user label is `off` (no per-user family at all), a keyed pseudonym (HMAC-SHA256 of the
//!   lower-cased `UserId` under the operator's key, 64 bits shown) or, only when asked for,
//!   the plain lower-cased `UserId`;
//! - the same key gives the same pseudonym across restarts; a different key gives unrelated
//!   pseudonyms, and the aggregator then restarts the per-user family instead of mixing both;
//! - the key itself never leaves this module: only a fingerprint (an HMAC of a fixed text) is
//!   stored in the state, to notice a change.

use std::fmt;

use hashbrown::{HashMap, HashSet};
use ring::hmac;

use super::labels::{self, label_set, WorkspaceActivity};
use super::memory::{HeapSize, HeapUsage, Holder, Interned};
use super::series::{CappedCounters, CountersState, Interner, Sym};
use super::shared::{ClippedLabel, Counted, Expired, Ids, Refs, Sweep, Truncations, View};
use super::AggregateConfig;
use crate::catalogue::{self, Family, Snapshot};

label_set!(
    /// A user's activity.
    UserActivity { user, activity } for USER_SENSITIVE_EVENTS
);

/// Domains learned from users' UPNs at most (a tenant has a handful).
const LEARNED_DOMAINS_CAP: usize = 1_000;

/// The group: per-user sensitive events, and shares outside the tenant.
#[derive(Debug)]
pub struct People {
    labeller: UserLabeller,
    user_labels: Interner,
    user_events: CappedCounters<(Sym, Sym)>,
    external_shares: CappedCounters<(Sym, Sym)>,
    /// Configured tenant domains; when empty, `learned_domains` stands in.
    tenant_domains: HashSet<String>,
    learned_domains: HashSet<String>,
    /// The interned label of each `UserId` (as sent) seen in a sensitive event: a pseudonym
    /// costs an HMAC, and a user's events come again and again. Only labels interned uncut are
    /// kept, and the whole cache is dropped whenever labels are released, so an entry always
    /// names a live label.
    label_cache: HashMap<Box<str>, Sym>,
    /// Whether a label was interned since labels were last released: if not, and no series
    /// expired, every label is still referred to and the release has nothing to do.
    labels_added: bool,
    /// Whether each activity is in [`SENSITIVE_ACTIVITIES`], by interned activity (`None`:
    /// not looked up yet); activity ids are never released, so an answer stays true.
    sensitive: Vec<Option<bool>>,
}

/// Most `UserId`s whose label is cached; past it the cache starts over.
const LABEL_CACHE_MAX: usize = 100_000;

/// The durable form of [`People`] (saved under the keys [`super::state_file`] names): user
/// labels, never user ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeopleState {
    /// `off`, `plain` or `pseudonym:<key fingerprint>`: the user family restarts on a change.
    pub(super) user_label: String,
    pub(super) user_labels: Vec<String>,
    pub(super) user_events: CountersState<(Sym, Sym)>,
    pub(super) external_shares: CountersState<(Sym, Sym)>,
    pub(super) learned_domains: Vec<String>,
}

impl People {
    pub fn new(config: &AggregateConfig) -> Self {
        let cap = |f: &Family| config.limits.cap(f);
        People {
            labeller: UserLabeller::new(&config.users),
            user_labels: Interner::new(cap(&catalogue::USER_SENSITIVE_EVENTS)),
            user_events: CappedCounters::new(cap(&catalogue::USER_SENSITIVE_EVENTS)),
            external_shares: CappedCounters::new(cap(&catalogue::EXTERNAL_SHARES)),
            tenant_domains: config.tenant_domains.iter().cloned().collect(),
            learned_domains: HashSet::new(),
            label_cache: HashMap::new(),
            // A restored state may hold labels no series refers to.
            labels_added: true,
            sensitive: Vec::new(),
        }
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>, clip: &mut Truncations) {
        let e = ev.event;
        let Some(user_id) = e.user_id.as_deref() else {
            return;
        };
        if self.tenant_domains.is_empty() {
            self.learn_domain(user_id, e.user_type);
        }
        if is_share(ev.activity) && e.recipients.iter().any(|r| self.is_external(r)) {
            self.external_shares.inc(ev.workspace_activity(), ev.time());
        }
        if self.is_sensitive(ev) {
            if let Some(user) = self.user_label(user_id, clip) {
                self.user_events.inc(user.zip(ev.activity_id), ev.time());
            }
        }
    }

    /// The interned label of `user_id`: `None` when labels are off, `Some(None)` past the
    /// label cap. Computed once per `UserId` while it stays interned ([`People::label_cache`]).
    fn user_label(&mut self, user_id: &str, clip: &mut Truncations) -> Option<Option<Sym>> {
        if let Some(&user) = self.label_cache.get(user_id) {
            return Some(Some(user));
        }
        let label = self.labeller.label(user_id)?;
        let full = label.len();
        let label = clip.clip_owned(ClippedLabel::User, label);
        let held = self.user_labels.len();
        let user = self.user_labels.intern(&label);
        self.labels_added |= self.user_labels.len() > held;
        // A cut label is counted as cut at each event, so it is never cached.
        if let (Some(user), true) = (user, label.len() == full) {
            if self.label_cache.len() >= LABEL_CACHE_MAX {
                self.label_cache.clear();
            }
            self.label_cache.insert(user_id.into(), user);
        }
        Some(user)
    }

    /// Whether the event's activity is sensitive, looked up once per interned activity.
    fn is_sensitive(&mut self, ev: &Counted<'_, '_>) -> bool {
        let Some(activity) = ev.activity_id else {
            return is_sensitive(ev.activity);
        };
        let slot = activity as usize;
        if self.sensitive.len() <= slot {
            self.sensitive.resize(slot + 1, None);
        }
        *self.sensitive[slot].get_or_insert_with(|| is_sensitive(ev.activity))
    }

    /// Remembers the domain of a member's UPN (at most [`LEARNED_DOMAINS_CAP`]). A domain
    /// already known is found first: most events come from known domains.
    fn learn_domain(&mut self, user_id: &str, user_type: Option<i64>) {
        let Some((_, domain)) = user_id.rsplit_once('@') else {
            return;
        };
        let known = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            self.learned_domains.contains(&domain.to_ascii_lowercase())
        } else {
            self.learned_domains.contains(domain)
        };
        if !known
            && self.learned_domains.len() < LEARNED_DOMAINS_CAP
            && !domain.is_empty()
            && is_member_upn(user_id, user_type)
        {
            self.learned_domains.insert(domain.to_ascii_lowercase());
        }
    }

    fn is_external(&self, recipient: &str) -> bool {
        let Some(domain) = domain(recipient) else {
            return false; // groups and objects without an e-mail
        };
        let own = if self.tenant_domains.is_empty() {
            &self.learned_domains
        } else {
            &self.tenant_domains
        };
        !own.contains(&domain)
    }

    /// Expires idle series, and releases the user labels no series refers to any more.
    pub fn expire(&mut self, sweep: Sweep, expired: &mut Expired) {
        let cutoff = sweep.cutoff;
        expired.add(
            &catalogue::EXTERNAL_SHARES,
            self.external_shares.expire(cutoff),
        );
        let gone = self.user_events.expire(cutoff);
        expired.add(&catalogue::USER_SENSITIVE_EVENTS, gone);
        // Every label was referred to after the last release, and series only came since.
        if gone == 0 && !self.labels_added {
            return;
        }
        let users: HashSet<Sym> = self.user_events.iter().map(|(&(u, _), _)| u).collect();
        if self.user_labels.release_unused(&users) > 0 {
            self.label_cache.clear();
        }
        self.labels_added = false;
    }

    pub fn refs(&self, refs: &mut Refs) {
        refs.workspaces
            .extend(self.external_shares.iter().map(|(&(w, _), _)| w));
    }

    pub fn heap(&self, usage: &mut HeapUsage) {
        let shares = &self.external_shares;
        usage.family(
            &catalogue::EXTERNAL_SHARES,
            shares.len(),
            shares.heap_bytes(),
        );
        let users = &self.user_events;
        usage.family(
            &catalogue::USER_SENSITIVE_EVENTS,
            users.len(),
            users.heap_bytes(),
        );
        let labels = &self.user_labels;
        let interned = Holder::Interner(Interned::UserLabels);
        let cached: usize = (self.label_cache.keys()).map(|id| id.heap_bytes()).sum();
        let cache = self.label_cache.allocation_size() + cached;
        usage.add(interned, labels.len(), labels.heap_bytes() + cache);
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 2] {
        [
            (&catalogue::EXTERNAL_SHARES, self.external_shares.dropped()),
            (
                &catalogue::USER_SENSITIVE_EVENTS,
                self.user_events.dropped(),
            ),
        ]
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        let ids: &Ids = view.ids;
        let family = &catalogue::EXTERNAL_SHARES;
        let samples = self.external_shares.iter().map(|(&(w, a), v)| {
            let labels = WorkspaceActivity {
                workspace_id: ids.workspace(w),
                activity: ids.activity(a),
            };
            (labels, v as f64)
        });
        let overflow = self.external_shares.overflow().map(|v| v as f64);
        labels::push_capped(out, family, samples, overflow);
        if self.labeller.is_off() {
            return;
        }
        let samples = self.user_events.iter().map(|(&(u, a), v)| {
            let labels = UserActivity {
                user: self.user_labels.name(u).to_string(),
                activity: ids.activity(a),
            };
            (labels, v as f64)
        });
        let overflow = self.user_events.overflow().map(|v| v as f64);
        labels::push_capped(out, &catalogue::USER_SENSITIVE_EVENTS, samples, overflow);
    }

    /// The user label ids free for reuse (saved with the state's expiry).
    pub fn released_labels(&self) -> Vec<Sym> {
        self.user_labels.released()
    }

    pub fn export(&self) -> PeopleState {
        PeopleState {
            user_label: self.labeller.identity(),
            user_labels: self.user_labels.export(),
            user_events: self.user_events.export(),
            external_shares: self.external_shares.export(),
            learned_domains: self.learned_domains.iter().cloned().collect(),
        }
    }

    /// Resumes under today's configuration; the per-user family restarts (empty) when the
    /// label mode or the pseudonym key changed, rather than mixing two kinds of labels.
    pub fn import(
        config: &AggregateConfig,
        state: PeopleState,
        released_labels: &[Sym],
        touched: i64,
    ) -> Self {
        let fresh = People::new(config);
        let cap = |f: &Family| config.limits.cap(f);
        let mut people = People {
            external_shares: CappedCounters::import(
                state.external_shares,
                cap(&catalogue::EXTERNAL_SHARES),
                touched,
            ),
            learned_domains: state.learned_domains.into_iter().collect(),
            ..fresh
        };
        if state.user_label == people.labeller.identity() {
            people.user_labels =
                Interner::import(state.user_labels, released_labels, people.user_labels.cap());
            people.user_events = CappedCounters::import(
                state.user_events,
                cap(&catalogue::USER_SENSITIVE_EVENTS),
                touched,
            );
        } else if !state.user_labels.is_empty() {
            tracing::warn!(
                before = %state.user_label.split(':').next().unwrap_or(""),
                now = %people.labeller.identity().split(':').next().unwrap_or(""),
                "The user label mode or pseudonym key changed: powerbi_user_sensitive_events_total restarts under the new labels (the old ones are dropped, not mixed)."
            );
        }
        people
    }
}

/// Activities whose per-user counts security teams ask for: exports, downloads, prints,
/// analyze-in-Excel and external tools, publish to web, shares, permission changes,
/// deletions and tenant-setting changes (the reference's high and critical rows).
pub const SENSITIVE_ACTIVITIES: &[&str] = &[
    "AcceptExternalDataShare",
    "AcquireStorageAccountKey",
    "AddAdminPersonalWorkspaceAccess",
    "AddGroupMembers",
    "AddTenantKey",
    "AddWorkspaceRoleViaAdminApi",
    "AnalyzeInExcel",
    "AnalyzeInExcelDataset",
    "AnalyzeInExcelReport",
    "AnalyzedByExternalApplication",
    "ChangeGatewayAdministrators",
    "CreateExternalDataShare",
    "DeleteArtifact",
    "DeleteDashboard",
    "DeleteDataflow",
    "DeleteDataset",
    "DeleteDatasetRows",
    "DeleteFolder",
    "DeleteGroup",
    "DeleteGroupMembers",
    "DeleteReport",
    "DeleteWorkspaceRoleViaAdminApi",
    "DeleteWorkspaceViaAdminApi",
    "DeleteWorkspacesPermanentlyAsAdmin",
    "DownloadReport",
    "ExportArtifact",
    "ExportDataflow",
    "ExportReport",
    "ExportTile",
    "GenerateDataflowSasToken",
    "GenerateEmbedToken",
    "PrintDashboard",
    "PrintReport",
    "PublishToWebReport",
    "RotateTenantKey",
    "SensitivityLabelChanged",
    "SensitivityLabelRemoved",
    "ShareArtifact",
    "ShareDashboard",
    "ShareDataset",
    "ShareLakehouseTable",
    "ShareReport",
    "ShareWarehouse",
    "TakeOverDataset",
    "TakeOverDatasource",
    "UpdateCapacityAdmins",
    "UpdateCapacityTenantSettingDelegation",
    "UpdateDatasourceShareTenantPolicy",
    "UpdateDomainTenantSettingDelegation",
    "UpdateFolderAccess",
    "UpdateTenantDlpPolicies",
    "UpdateWorkspaceAccess",
    "UpdateWorkspaceRoleViaAdminApi",
    "UpdateWorkspaceTenantSettingDelegation",
    "UpdatedAdminFeatureSwitch",
];

/// Whether an activity (as the API spells it) is in [`SENSITIVE_ACTIVITIES`].
pub fn is_sensitive(activity: &str) -> bool {
    SENSITIVE_ACTIVITIES.binary_search(&activity).is_ok()
}

/// Share activities, whose `SharingInformation` recipients may be outside the tenant.
pub fn is_share(activity: &str) -> bool {
    activity.starts_with("Share")
}

/// Key bytes of the pseudonyms; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey(pub Vec<u8>);

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

impl PseudonymKey {
    /// A fresh random key (32 bytes).
    pub fn generate() -> PseudonymKey {
        use ring::rand::SecureRandom;
        let mut bytes = vec![0u8; 32];
        // SystemRandom only fails when the OS has no randomness at all.
        let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
        PseudonymKey(bytes)
    }
}

/// How users are labelled in `powerbi_user_sensitive_events_total`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UserLabelConfig {
    /// No per-user family.
    Off,
    /// Keyed pseudonyms; `None` until the application supplies a key (from the state
    /// directory, or a random one for this run).
    #[default]
    PseudonymUnkeyed,
    Pseudonym(PseudonymKey),
    /// The lower-cased `UserId` (opt-in).
    Plain,
}

/// Turns a `UserId` into its label.
pub enum UserLabeller {
    Off,
    Pseudonym { key: hmac::Key, fingerprint: String },
    Plain,
}

impl fmt::Debug for UserLabeller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserLabeller({})", self.identity())
    }
}

impl UserLabeller {
    pub fn new(config: &UserLabelConfig) -> UserLabeller {
        match config {
            UserLabelConfig::Off => UserLabeller::Off,
            UserLabelConfig::Plain => UserLabeller::Plain,
            UserLabelConfig::Pseudonym(k) => Self::keyed(k),
            UserLabelConfig::PseudonymUnkeyed => Self::keyed(&PseudonymKey::generate()),
        }
    }

    fn keyed(k: &PseudonymKey) -> UserLabeller {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &k.0);
        let check = hmac::sign(&key, b"powerbi-exporter pseudonym key check");
        UserLabeller::Pseudonym {
            fingerprint: hex(&check.as_ref()[..8]),
            key,
        }
    }

    /// What the state remembers to notice a change of mode or key.
    pub fn identity(&self) -> String {
        match self {
            UserLabeller::Off => "off".into(),
            UserLabeller::Plain => "plain".into(),
            UserLabeller::Pseudonym { fingerprint, .. } => format!("pseudonym:{fingerprint}"),
        }
    }

    pub fn is_off(&self) -> bool {
        matches!(self, UserLabeller::Off)
    }

    /// The label of `user_id` (case-insensitive), or `None` when labels are off.
    pub fn label(&self, user_id: &str) -> Option<String> {
        let lower = user_id.to_lowercase();
        match self {
            UserLabeller::Off => None,
            UserLabeller::Plain => Some(lower),
            UserLabeller::Pseudonym { key, .. } => {
                let tag = hmac::sign(key, lower.as_bytes());
                Some(format!("u-{}", hex(&tag.as_ref()[..8])))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The domain of an e-mail address or UPN, lower-cased; guests' `#EXT#` UPNs have none of
/// the tenant's.
pub fn domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// Whether a `UserId` belongs to the tenant's own people (not a guest), so its domain can be
/// learned as one of the tenant's.
pub fn is_member_upn(user_id: &str, user_type: Option<i64>) -> bool {
    user_type != Some(10)
        && !user_id
            .as_bytes()
            .windows(5)
            .any(|w| w.eq_ignore_ascii_case(b"#ext#"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::shared::testing::{observe_all, samples, shared};
    use crate::aggregate::shared::InventoryIndex;
    use crate::decode::UnixMillis;

    fn render(people: &People, ids: &Ids) -> Snapshot {
        let inventory = InventoryIndex::default();
        let view = View {
            ids,
            inventory: &inventory,
            reference: UnixMillis(0),
        };
        let mut out = Snapshot::default();
        people.render(&view, &mut out);
        out
    }

    #[test]
    fn shares_outside_the_learned_domains_count_and_users_are_labelled_as_configured() {
        let events = [
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserId":"ana@contoso.com","WorkspaceId":"w1"}"#,
            r#"{"Id":"b","Activity":"ShareReport","CreationTime":"2026-11-20T11:00:00","UserId":"Ana@Contoso.com","WorkspaceId":"w1","SharingInformation":[{"RecipientEmail":"bob@contoso.com"}]}"#,
            r#"{"Id":"c","Activity":"ShareReport","CreationTime":"2026-11-20T12:00:00","UserId":"ana@contoso.com","WorkspaceId":"w1","SharingInformation":[{"RecipientEmail":"x@fabrikam.com"}]}"#,
            r#"{"Id":"d","Activity":"ShareDashboard","CreationTime":"2026-11-20T13:00:00","UserId":"ana@contoso.com","WorkspaceId":"w1","SharingInformation":[{"RecipientEmail":"bob@contoso.com"},{"RecipientEmail":"y@fabrikam.com"}]}"#,
            r#"{"Id":"e","Activity":"ShareReport","CreationTime":"2026-11-20T14:00:00","UserId":"ana@contoso.com","WorkspaceId":"w1","SharingInformation":[{"RecipientEmail":"z@fabrikam.com"}]}"#,
        ];
        for (users, expected) in [
            (
                UserLabelConfig::Plain,
                vec![
                    "user=ana@contoso.com,activity=ShareDashboard 1",
                    "user=ana@contoso.com,activity=ShareReport 3",
                ],
            ),
            (UserLabelConfig::Off, vec![]),
        ] {
            let config = AggregateConfig {
                users,
                ..AggregateConfig::default()
            };
            let mut shared = shared(&config.limits);
            let mut people = People::new(&config);
            observe_all(&mut shared, &events, |ev, clip| people.observe(ev, clip));
            let out = render(&people, &shared.ids);
            assert_eq!(
                samples(&out, &catalogue::EXTERNAL_SHARES),
                [
                    "workspace_id=w1,activity=ShareDashboard 1",
                    "workspace_id=w1,activity=ShareReport 2"
                ]
            );
            assert_eq!(samples(&out, &catalogue::USER_SENSITIVE_EVENTS), expected);
            assert_eq!(
                out.family(catalogue::USER_SENSITIVE_EVENTS.name).is_some(),
                !expected.is_empty()
            );
        }
    }

    #[test]
    fn the_sensitive_list_is_sorted_for_binary_search() {
        assert!(SENSITIVE_ACTIVITIES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_sensitive("ExportReport") && is_sensitive("UpdatedAdminFeatureSwitch"));
        assert!(!is_sensitive("ViewReport"));
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_case_insensitive() {
        let a = UserLabeller::new(&UserLabelConfig::Pseudonym(PseudonymKey(b"k1".to_vec())));
        let again = UserLabeller::new(&UserLabelConfig::Pseudonym(PseudonymKey(b"k1".to_vec())));
        let other = UserLabeller::new(&UserLabelConfig::Pseudonym(PseudonymKey(b"k2".to_vec())));
        let p = a.label("Ana@Contoso.com").unwrap();
        assert_eq!(p.len(), 18);
        assert!(p.starts_with("u-"));
        assert_eq!(a.label("ana@contoso.com"), Some(p.clone()));
        assert_eq!(again.label("ana@contoso.com"), Some(p.clone()));
        assert_ne!(other.label("ana@contoso.com"), Some(p));
        assert_eq!(a.identity(), again.identity());
        assert_ne!(a.identity(), other.identity());
        assert!(!a.identity().contains("k1"));
        let plain = UserLabeller::new(&UserLabelConfig::Plain);
        assert_eq!(
            plain.label("Ana@Contoso.com").as_deref(),
            Some("ana@contoso.com")
        );
        assert_eq!(UserLabeller::new(&UserLabelConfig::Off).label("x"), None);
        assert_eq!(
            format!("{:?}", PseudonymKey(b"secret".to_vec())),
            "PseudonymKey(<redacted>)"
        );
    }

    #[test]
    fn domains_and_members() {
        assert_eq!(domain("X@Fabrikam.COM").as_deref(), Some("fabrikam.com"));
        assert_eq!(domain("no-at"), None);
        assert!(is_member_upn("ana@contoso.com", Some(0)));
        assert!(!is_member_upn(
            "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            Some(0)
        ));
        assert!(!is_member_upn("guest@fabrikam.com", Some(10)));
    }
}
