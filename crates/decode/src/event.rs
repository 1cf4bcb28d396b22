//! One activity event, decoded leniently from the bytes of one JSON value.
//!
//! Invariants:
//! - decoding never panics and never fails the page: any value yields either an
//!   [`ActivityEvent`] or a [`Rejection`] with its reason;
//! - strings without escapes are borrowed from the input buffer (`Cow::Borrowed`); only
//!   strings that contain JSON escapes are copied;
//! - unknown fields are skipped without being materialised; fields of an unexpected type are
//!   treated as absent, except the required `Id`, `Activity` and `CreationTime`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::time::{parse_creation_time, UnixMillis};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub Cow<'a, str>);

        impl<'a> $name<'a> {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// `WorkspaceId`: a GUID in lower case (see [`lower_guid`]), or a non-GUID id as sent.
    WorkspaceId
);
string_id!(
    /// `ReportId`: a GUID in lower case (see [`lower_guid`]), or a non-GUID id as sent.
    ReportId
);

/// `id` in lower case when it is GUID-shaped (8-4-4-4-12 hex digits), else as it came.
///
/// The API spells one GUID in several cases: admin/groups sends upper case, events lower or
/// mixed case. Ids label series and join the inventory with events, so one spelling is kept.
/// Non-GUID ids ("My Workspace" in old personal-workspace events) are names, kept as sent.
/// Cheap on the hot path: a length test, then a scan for upper-case letters; only an id that
/// needs it is copied.
pub fn lower_guid(id: Cow<'_, str>) -> Cow<'_, str> {
    if id.len() != 36 || !has_ascii_upper(id.as_bytes()) || parse_guid(&id).is_none() {
        return id;
    }
    Cow::Owned(id.to_ascii_lowercase())
}
string_id!(
    /// The id of an item other than a report or workspace (`DatasetId`, `DashboardId`,
    /// `DataflowId`, `AppId`, `ArtifactId`): a GUID in lower case (see [`lower_guid`]), or a
    /// non-GUID id as sent.
    ItemId
);

/// An item an event names by id, with the name the event gives it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef<'a> {
    pub id: ItemId<'a>,
    pub name: Option<Cow<'a, str>>,
}

/// The items other than the report that an event names: each id with its name field
/// (`DatasetId`/`DatasetName`, …), and the generic Fabric `ArtifactId`/`ArtifactName` with
/// its `ArtifactKind`. Which one the event is *about* is [`crate::item::item_of`]'s rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemRefs<'a> {
    pub dataset: Option<ItemRef<'a>>,
    pub dashboard: Option<ItemRef<'a>>,
    pub dataflow: Option<ItemRef<'a>>,
    pub app: Option<ItemRef<'a>>,
    pub artifact: Option<ItemRef<'a>>,
    /// `ArtifactKind` as sent (`Lakehouse`, `Notebook`, `Report`, …).
    pub artifact_kind: Option<Cow<'a, str>>,
}

string_id!(
    /// `Activity`, kept exactly as the API spells it (`ViewReport`, `ExportReport`, …).
    Activity
);

/// The dedup key of an event: its `Id` GUID as a number, or a 128-bit hash of a non-GUID `Id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(pub u128);

impl EventKey {
    pub fn from_id(id: &str) -> Self {
        parse_guid(id).map_or_else(
            || EventKey(xxhash_rust::xxh3::xxh3_128(id.as_bytes())),
            EventKey,
        )
    }
}

/// A user, as a 64-bit hash of the lower-cased `UserId`. The id itself is never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub u64);

impl UserKey {
    pub fn from_user_id(user: &str) -> Self {
        if !has_ascii_upper(user.as_bytes()) {
            return UserKey(xxhash_rust::xxh3::xxh3_64(user.as_bytes()));
        }
        // UPNs come in mixed case ("Priya.Patel@contoso.com"): lower-cased on the stack, so
        // an event costs no allocation.
        let mut lower = [0u8; 128];
        match lower.get_mut(..user.len()) {
            Some(lower) => {
                lower.copy_from_slice(user.as_bytes());
                lower.make_ascii_lowercase();
                UserKey(xxhash_rust::xxh3::xxh3_64(lower))
            }
            None => UserKey(xxhash_rust::xxh3::xxh3_64(
                user.to_ascii_lowercase().as_bytes(),
            )),
        }
    }
}

/// Whether `bytes` holds an ASCII upper-case letter; 8 bytes at a time, as GUIDs and UPNs are
/// checked on every event.
fn has_ascii_upper(bytes: &[u8]) -> bool {
    const LOW7: u64 = u64::from_le_bytes([0x7f; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    let upper_in = |w: u64| {
        // Per byte, without carries across bytes: the low 7 bits `t` satisfy
        // 'A' <= t <= 'Z' exactly when 'Z' + 128 - t and t + 127 - '@' both have the high bit
        // set; the high bit of the byte itself must be clear.
        let t = w & LOW7;
        let below_z = ONES * (127 + u64::from(b'Z') + 1) - t;
        let above_a = t + ONES * (127 - u64::from(b'A' - 1));
        below_z & above_a & !w & HIGH != 0
    };
    words
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        .any(upper_in)
        || rest.iter().any(u8::is_ascii_uppercase)
}

/// An event the aggregation can use.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityEvent<'a> {
    pub key: EventKey,
    pub time: UnixMillis,
    pub activity: Activity<'a>,
    pub workspace_id: Option<WorkspaceId<'a>>,
    pub workspace_name: Option<Cow<'a, str>>,
    pub report_id: Option<ReportId<'a>>,
    pub report_name: Option<Cow<'a, str>>,
    /// The other items the event names (semantic model, dashboard, dataflow, app, Fabric
    /// artifact); fields of another JSON type than a string are absent, not flagged.
    pub items: ItemRefs<'a>,
    pub user: Option<UserKey>,
    /// `UserId` as sent (a UPN for people), a GUID in lower case (service principals); used only where
    /// the operator asked for user labels or user filters, never kept otherwise.
    pub user_id: Option<Cow<'a, str>>,
    /// `UserType` (O365 enum: 0 regular, 2 admin, 5 application, 6 service principal, …), sent
    /// as its number or its documented name.
    pub user_type: Option<i64>,
    /// E-mail (or UPN) of each recipient in `SharingInformation`; empty for most events.
    pub recipients: Vec<Cow<'a, str>>,
    /// `IsSuccess`; an event without the field counts as successful.
    pub success: bool,
    /// Fields present with an unexpected JSON type (treated as absent), one bit per
    /// [`TypedField`] ([`TypedField::bit`]): schema drift shows here first.
    pub field_type_mismatches: u8,
}

/// An optional field whose JSON type is checked; the label value of
/// `powerbi_event_field_type_mismatches_total{field}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedField {
    IsSuccess,
    ReportId,
    ReportName,
    UserId,
    UserType,
    WorkSpaceName,
    WorkspaceId,
}

impl TypedField {
    /// Every field, in the bit order of `field_type_mismatches` (the variants' order).
    pub const ALL: [TypedField; 7] = [
        TypedField::IsSuccess,
        TypedField::ReportId,
        TypedField::ReportName,
        TypedField::UserId,
        TypedField::UserType,
        TypedField::WorkSpaceName,
        TypedField::WorkspaceId,
    ];

    /// The field's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TypedField::IsSuccess => "IsSuccess",
            TypedField::ReportId => "ReportId",
            TypedField::ReportName => "ReportName",
            TypedField::UserId => "UserId",
            TypedField::UserType => "UserType",
            TypedField::WorkSpaceName => "WorkSpaceName",
            TypedField::WorkspaceId => "WorkspaceId",
        }
    }

    /// Its bit in [`ActivityEvent::field_type_mismatches`].
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Why an event was skipped; the label value of `powerbi_events_rejected_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    InvalidJson,
    NotAnObject,
    MissingId,
    MissingActivity,
    MissingTime,
    InvalidTime,
    OutsideDedupWindow,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Rejection::InvalidJson,
        Rejection::NotAnObject,
        Rejection::MissingId,
        Rejection::MissingActivity,
        Rejection::MissingTime,
        Rejection::InvalidTime,
        Rejection::OutsideDedupWindow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidJson => "invalid_json",
            Rejection::NotAnObject => "not_an_object",
            Rejection::MissingId => "missing_id",
            Rejection::MissingActivity => "missing_activity",
            Rejection::MissingTime => "missing_time",
            Rejection::InvalidTime => "invalid_time",
            Rejection::OutsideDedupWindow => "outside_dedup_window",
        }
    }
}

/// Decodes one JSON value (the bytes of one element of `activityEventEntities`).
pub fn decode_event(bytes: &[u8]) -> Result<ActivityEvent<'_>, Rejection> {
    let mut raw = RawEvent::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let is_object = Slot(&mut raw)
        .deserialize(&mut de)
        .and_then(|o| de.end().map(|()| o));
    raw.take_event(is_object.map_err(|_| Rejection::InvalidJson)?)
}

/// The fields we read, each tolerant of any JSON type.
#[derive(Default)]
pub(crate) struct RawEvent<'a> {
    id: Lenient<'a>,
    creation_time: Lenient<'a>,
    activity: Lenient<'a>,
    workspace_id: Lenient<'a>,
    workspace_name: Lenient<'a>,
    workspace_name_alias: Lenient<'a>,
    report_id: Lenient<'a>,
    report_name: Lenient<'a>,
    dataset_id: Lenient<'a>,
    dataset_name: Lenient<'a>,
    dashboard_id: Lenient<'a>,
    dashboard_name: Lenient<'a>,
    dataflow_id: Lenient<'a>,
    dataflow_name: Lenient<'a>,
    app_id: Lenient<'a>,
    app_name: Lenient<'a>,
    artifact_id: Lenient<'a>,
    artifact_name: Lenient<'a>,
    artifact_kind: Lenient<'a>,
    user_id: Lenient<'a>,
    user_type: Lenient<'a>,
    recipients: Vec<Cow<'a, str>>,
    is_success: Lenient<'a>,
    /// Where values of fields we do not read would go; never read.
    ignored: Lenient<'a>,
}

impl<'a> RawEvent<'a> {
    /// The event, or why not; `is_object` says whether the value was a JSON object at all.
    pub(crate) fn take_event(&mut self, is_object: bool) -> Result<ActivityEvent<'a>, Rejection> {
        if !is_object {
            return Err(Rejection::NotAnObject);
        }
        // Fields are taken, not the whole slot moved: the slot is reused for the next event.
        let key = match &self.id {
            Lenient::Str(id) if !is_blank(id) => EventKey::from_id(id),
            _ => return Err(Rejection::MissingId),
        };
        let activity = take(&mut self.activity).ok_or(Rejection::MissingActivity)?;
        let time = match &self.creation_time {
            Lenient::Str(s) if !s.is_empty() => {
                parse_creation_time(s).ok_or(Rejection::InvalidTime)?
            }
            Lenient::Absent | Lenient::Null => return Err(Rejection::MissingTime),
            _ => return Err(Rejection::InvalidTime),
        };
        let field_type_mismatches = self.field_type_mismatches();
        let user_id = take(&mut self.user_id).map(lower_guid);
        let user = user_id.as_deref().map(UserKey::from_user_id);
        let user_type = match &self.user_type {
            Lenient::Int(n) => Some(*n),
            Lenient::Str(name) => user_type_named(name),
            _ => None,
        };
        Ok(ActivityEvent {
            key,
            time,
            activity: Activity(activity),
            workspace_id: take(&mut self.workspace_id)
                .map(lower_guid)
                .map(WorkspaceId),
            workspace_name: take(&mut self.workspace_name)
                .or_else(|| take(&mut self.workspace_name_alias)),
            report_id: take(&mut self.report_id).map(lower_guid).map(ReportId),
            report_name: take(&mut self.report_name),
            items: self.take_items(),
            user,
            user_id,
            user_type,
            recipients: std::mem::take(&mut self.recipients),
            success: !matches!(self.is_success, Lenient::Bool(false)),
            field_type_mismatches,
        })
    }

    /// The item ids and names (an id without a name is kept, a name without an id is not).
    fn take_items(&mut self) -> ItemRefs<'a> {
        // Most events name no such item: then there is nothing to move (every field is reset
        // before the next event anyway).
        let ids = [
            &self.dataset_id,
            &self.dashboard_id,
            &self.dataflow_id,
            &self.app_id,
            &self.artifact_id,
        ];
        if ids.iter().all(|id| matches!(id, Lenient::Absent)) {
            return ItemRefs::default();
        }
        let item = |id: &mut Lenient<'a>, name: &mut Lenient<'a>| {
            let id = take(id)?;
            Some(ItemRef {
                id: ItemId(lower_guid(id)),
                name: take(name),
            })
        };
        ItemRefs {
            dataset: item(&mut self.dataset_id, &mut self.dataset_name),
            dashboard: item(&mut self.dashboard_id, &mut self.dashboard_name),
            dataflow: item(&mut self.dataflow_id, &mut self.dataflow_name),
            app: item(&mut self.app_id, &mut self.app_name),
            artifact: item(&mut self.artifact_id, &mut self.artifact_name),
            artifact_kind: take(&mut self.artifact_kind),
        }
    }

    /// The [`TypedField::bit`]s of the fields whose value has a type the API does not send
    /// there.
    fn field_type_mismatches(&self) -> u8 {
        TypedField::ALL.iter().fold(0, |bits, &f| {
            bits | if self.is_mismatched(f) { f.bit() } else { 0 }
        })
    }

    /// Whether `field` holds a JSON type the API does not send there.
    fn is_mismatched(&self, field: TypedField) -> bool {
        let text =
            |v: &Lenient<'_>| matches!(v, Lenient::Bool(_) | Lenient::Int(_) | Lenient::Other);
        match field {
            TypedField::IsSuccess => matches!(
                self.is_success,
                Lenient::Str(_) | Lenient::Int(_) | Lenient::Other
            ),
            TypedField::ReportId => text(&self.report_id),
            TypedField::ReportName => text(&self.report_name),
            TypedField::UserId => text(&self.user_id),
            TypedField::UserType => match &self.user_type {
                Lenient::Str(name) => user_type_named(name).is_none(),
                Lenient::Bool(_) | Lenient::Other => true,
                _ => false,
            },
            TypedField::WorkSpaceName => {
                text(&self.workspace_name) || text(&self.workspace_name_alias)
            }
            TypedField::WorkspaceId => text(&self.workspace_id),
        }
    }
}

/// The names of the `UserType` enum of the Office 365 Management Activity API schema
/// (MicrosoftDocs/office-365-management-api, office-365-management-activity-api-schema.md,
/// "Enum: User Type"), by value: unified-audit-log flavoured records write them as strings.
const USER_TYPE_NAMES: [&str; 9] = [
    "Regular",
    "Reserved",
    "Admin",
    "DcAdmin",
    "System",
    "Application",
    "ServicePrincipal",
    "CustomPolicy",
    "SystemPolicy",
];

/// The number of a `UserType` written as its documented name, in any case.
fn user_type_named(name: &str) -> Option<i64> {
    let n = USER_TYPE_NAMES
        .iter()
        .position(|known| known.eq_ignore_ascii_case(name.trim()))?;
    i64::try_from(n).ok()
}

/// A field value of any JSON type, keeping strings and booleans.
#[derive(Debug, Default)]
pub(crate) enum Lenient<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Other,
}

/// Takes a field's value as a non-blank string, or `None`.
fn take<'a>(field: &mut Lenient<'a>) -> Option<Cow<'a, str>> {
    match std::mem::take(field) {
        Lenient::Str(s) if !is_blank(&s) => Some(s),
        _ => None,
    }
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_whitespace())
}

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lenient::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Lenient::Other, Lenient::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }
}

/// The keys we read; `WorkSpaceName` is the API's spelling, `WorkspaceName` an alias seen in
/// PowerShell-produced archives. Matching is exact (JSON keys are case-sensitive) and on the
/// raw bytes: keys are never UTF-8-validated or copied, which is most of the decoding cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Id,
    CreationTime,
    Activity,
    WorkspaceId,
    WorkSpaceName,
    WorkspaceName,
    ReportId,
    ReportName,
    DatasetId,
    DatasetName,
    DashboardId,
    DashboardName,
    DataflowId,
    DataflowName,
    AppId,
    AppName,
    ArtifactId,
    ArtifactName,
    ArtifactKind,
    UserId,
    UserType,
    /// An array of recipient objects: read by serde only (the hand parser bails).
    SharingInformation,
    IsSuccess,
    Other,
}

impl Field {
    /// The field a key names; `Other` for every key we do not read. One table probe and one
    /// comparison: events carry some 40 keys, most of them unknown, so this runs on every key.
    #[inline]
    pub(crate) fn from_key(key: &[u8]) -> Field {
        let signature = KeySignature::of(key);
        let (name, known, field) = KEY_TABLE[signature.slot()];
        // Compared without branching: whether an unknown key lands on an empty slot is a
        // coin toss the branch predictor would lose.
        let same = (known.len == signature.len)
            & (known.head == signature.head)
            & (known.tail == signature.tail);
        let field = if same { field } else { Field::Other };
        if key.len() > KeySignature::EXACT_UP_TO && field != Field::Other && key != name {
            return Field::Other;
        }
        field
    }
}

/// Every key we read, with its field.
const KNOWN_KEYS: [(&[u8], Field); 23] = [
    (b"Id", Field::Id),
    (b"CreationTime", Field::CreationTime),
    (b"Activity", Field::Activity),
    (b"WorkspaceId", Field::WorkspaceId),
    (b"WorkSpaceName", Field::WorkSpaceName),
    (b"WorkspaceName", Field::WorkspaceName),
    (b"ReportId", Field::ReportId),
    (b"ReportName", Field::ReportName),
    (b"DatasetId", Field::DatasetId),
    (b"DatasetName", Field::DatasetName),
    (b"DashboardId", Field::DashboardId),
    (b"DashboardName", Field::DashboardName),
    (b"DataflowId", Field::DataflowId),
    (b"DataflowName", Field::DataflowName),
    (b"AppId", Field::AppId),
    (b"AppName", Field::AppName),
    (b"ArtifactId", Field::ArtifactId),
    (b"ArtifactName", Field::ArtifactName),
    (b"ArtifactKind", Field::ArtifactKind),
    (b"UserId", Field::UserId),
    (b"UserType", Field::UserType),
    (b"SharingInformation", Field::SharingInformation),
    (b"IsSuccess", Field::IsSuccess),
];

/// [`KNOWN_KEYS`] by [`KeySignature::slot`]: a perfect hash table, built at compile time (a
/// collision fails the build; then pick another [`KeySignature::MULTIPLIER`]).
const KEY_TABLE: [(&[u8], KeySignature, Field); 64] = {
    // An empty slot's signature matches no key: no key is `usize::MAX` bytes long.
    let empty = KeySignature {
        len: usize::MAX,
        head: 0,
        tail: 0,
    };
    let mut table: [(&[u8], KeySignature, Field); 64] = [(b"", empty, Field::Other); 64];
    let mut i = 0;
    while i < KNOWN_KEYS.len() {
        let (name, field) = KNOWN_KEYS[i];
        let signature = KeySignature::of_any(name);
        let slot = signature.slot();
        assert!(
            table[slot].1.len == usize::MAX,
            "two known keys share a slot"
        );
        table[slot] = (name, signature, field);
        i += 1;
    }
    table
};

/// A key's length with its first and last 8 bytes (little-endian, zero-padded when shorter):
/// keys of up to 16 bytes are equal exactly when their signatures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeySignature {
    len: usize,
    head: u64,
    tail: u64,
}

impl KeySignature {
    /// Longest key its signature identifies alone.
    const EXACT_UP_TO: usize = 16;
    /// Found by search: spreads the 23 known keys over 64 slots without a collision.
    const MULTIPLIER: u64 = 0xcfdd_d0c5_8b71_cce7;

    /// Two 8-byte loads for keys of 8 bytes or more, the usual case.
    #[inline]
    fn of(key: &[u8]) -> Self {
        match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
            (Some(head), Some(tail)) => KeySignature {
                len: key.len(),
                head: u64::from_le_bytes(*head),
                tail: u64::from_le_bytes(*tail),
            },
            _ => Self::of_any(key),
        }
    }

    /// The same signature byte by byte, for short keys and the compile-time table.
    const fn of_any(key: &[u8]) -> Self {
        KeySignature {
            len: key.len(),
            head: packed(key, 0),
            tail: packed(key, key.len().saturating_sub(8)),
        }
    }

    const fn slot(self) -> usize {
        let mixed = self.head ^ self.tail.rotate_left(29) ^ self.len as u64;
        (mixed.wrapping_mul(Self::MULTIPLIER) >> 58) as usize
    }
}

/// Up to 8 bytes of `bytes` from `from`, little-endian, zero-padded.
const fn packed(bytes: &[u8], from: usize) -> u64 {
    let mut word = 0u64;
    let mut i = 0;
    while i < 8 && from + i < bytes.len() {
        word |= (bytes[from + i] as u64) << (8 * i);
        i += 1;
    }
    word
}

/// Deserializes a map key as raw bytes and hands it to `classify`.
pub(crate) struct KeyVisitor<F>(pub F);

impl<'de, T, F: FnOnce(&[u8]) -> T> Visitor<'de> for KeyVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<T, E> {
        Ok((self.0)(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v.as_bytes()))
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(KeyVisitor(Field::from_key))
    }
}

impl<'a> RawEvent<'a> {
    /// The slot of a field we read (`Other` has none: its values are skipped).
    pub(crate) fn slot(&mut self, field: Field) -> &mut Lenient<'a> {
        match field {
            Field::Id => &mut self.id,
            Field::CreationTime => &mut self.creation_time,
            Field::Activity => &mut self.activity,
            Field::WorkspaceId => &mut self.workspace_id,
            Field::WorkSpaceName => &mut self.workspace_name,
            Field::WorkspaceName => &mut self.workspace_name_alias,
            Field::ReportId => &mut self.report_id,
            Field::ReportName => &mut self.report_name,
            Field::DatasetId => &mut self.dataset_id,
            Field::DatasetName => &mut self.dataset_name,
            Field::DashboardId => &mut self.dashboard_id,
            Field::DashboardName => &mut self.dashboard_name,
            Field::DataflowId => &mut self.dataflow_id,
            Field::DataflowName => &mut self.dataflow_name,
            Field::AppId => &mut self.app_id,
            Field::AppName => &mut self.app_name,
            Field::ArtifactId => &mut self.artifact_id,
            Field::ArtifactName => &mut self.artifact_name,
            Field::ArtifactKind => &mut self.artifact_kind,
            Field::UserId => &mut self.user_id,
            Field::UserType => &mut self.user_type,
            Field::IsSuccess => &mut self.is_success,
            Field::SharingInformation | Field::Other => &mut self.ignored,
        }
    }

    /// Reads the value of `field` into its slot (or skips it).
    pub(crate) fn read<A: MapAccess<'a>>(
        &mut self,
        field: Field,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match field {
            Field::Other => {
                map.next_value::<IgnoredAny>()?;
            }
            Field::SharingInformation => self.recipients = map.next_value::<Recipients>()?.0,
            _ => *self.slot(field) = map.next_value()?,
        }
        Ok(())
    }
}

/// `SharingInformation`: the e-mail (else the UPN) of each recipient object; anything else in
/// it is skipped, and a value that is not an array yields no recipients.
struct Recipients<'a>(Vec<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Recipients<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Recipients<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of recipients")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut found = Vec::new();
                while let Some(Recipient(r)) = seq.next_element()? {
                    found.extend(r);
                }
                Ok(Recipients(found))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Recipients(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Recipients(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One recipient object: its `RecipientEmail`, else its `UserPrincipalName`.
struct Recipient<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Recipient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Recipient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a recipient object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut email, mut upn) = (Lenient::Absent, Lenient::Absent);
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    match key {
                        1 => email = map.next_value()?,
                        2 => upn = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Recipient(take(&mut email).or_else(|| take(&mut upn))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Recipient(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Recipient(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Classifies a recipient key: 1 `RecipientEmail`, 2 `UserPrincipalName`, 0 anything else.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = u8;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u8, D::Error> {
        d.deserialize_bytes(KeyVisitor(|k: &[u8]| match k {
            b"RecipientEmail" => 1,
            b"UserPrincipalName" => 2,
            _ => 0,
        }))
    }
}

/// Decodes one JSON value into the slot, in place (no copy of the fields); answers whether
/// the value was an object.
pub(crate) struct Slot<'s, 'de>(pub &'s mut RawEvent<'de>);

impl<'de> DeserializeSeed<'de> for Slot<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Slot<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an activity event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        *self.0 = RawEvent::default();
        while let Some(field) = map.next_key::<Field>()? {
            self.0.read(field, &mut map)?;
        }
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Hex value of each byte, 0xFF for non-hex bytes.
const HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Positions of the 32 hex digits of a GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const GUID_DIGITS: [usize; 32] = {
    let mut p = [0; 32];
    let (mut i, mut j) = (0, 0);
    while i < 36 {
        if !(i == 8 || i == 13 || i == 18 || i == 23) {
            p[j] = i;
            j += 1;
        }
        i += 1;
    }
    p
};

/// Whether `s` is GUID-shaped: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits in any case.
pub fn is_guid(s: &str) -> bool {
    parse_guid(s).is_some()
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case) into a number.
fn parse_guid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut v: u128 = 0;
    let mut bad = 0u8;
    for &i in &GUID_DIGITS {
        let d = HEX[b[i] as usize];
        bad |= d;
        v = (v << 4) | u128::from(d & 0x0F);
    }
    (bad & 0xF0 == 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys we read, as the API spells them: the truth for [`Field::from_key`].
    fn field_named(key: &[u8]) -> Field {
        match key {
            b"Id" => Field::Id,
            b"CreationTime" => Field::CreationTime,
            b"Activity" => Field::Activity,
            b"WorkspaceId" => Field::WorkspaceId,
            b"WorkSpaceName" => Field::WorkSpaceName,
            b"WorkspaceName" => Field::WorkspaceName,
            b"ReportId" => Field::ReportId,
            b"ReportName" => Field::ReportName,
            b"DatasetId" => Field::DatasetId,
            b"DatasetName" => Field::DatasetName,
            b"DashboardId" => Field::DashboardId,
            b"DashboardName" => Field::DashboardName,
            b"DataflowId" => Field::DataflowId,
            b"DataflowName" => Field::DataflowName,
            b"AppId" => Field::AppId,
            b"AppName" => Field::AppName,
            b"ArtifactId" => Field::ArtifactId,
            b"ArtifactName" => Field::ArtifactName,
            b"ArtifactKind" => Field::ArtifactKind,
            b"UserId" => Field::UserId,
            b"UserType" => Field::UserType,
            b"SharingInformation" => Field::SharingInformation,
            b"IsSuccess" => Field::IsSuccess,
            _ => Field::Other,
        }
    }

    #[test]
    fn upper_case_is_found_whatever_byte_sits_anywhere() {
        for len in [1, 7, 8, 9, 16, 23, 36] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    let truth = bytes.iter().any(|b| b.is_ascii_uppercase());
                    assert_eq!(has_ascii_upper(&bytes), truth, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn user_keys_ignore_case_at_any_length() {
        for user in [
            "Priya.Patel@Contoso.com",
            &"Ab".repeat(64),
            &"Ab".repeat(65),
            "x",
        ] {
            let lower = user.to_ascii_lowercase();
            let truth = UserKey(xxhash_rust::xxh3::xxh3_64(lower.as_bytes()));
            assert_eq!(UserKey::from_user_id(user), truth, "{user}");
            assert_eq!(UserKey::from_user_id(&lower), truth, "{user}");
        }
    }

    #[test]
    fn keys_are_classified_exactly() {
        // Every known key, and every near miss of it: each byte changed, one byte cut from
        // either end, one added at either end; plus keys events really carry.
        let known: Vec<&[u8]> = KNOWN_KEYS.iter().map(|(k, _)| *k).collect();
        let mut keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"I".to_vec(), b"id".to_vec()];
        for key in &known {
            keys.push(key.to_vec());
            keys.push(key[1..].to_vec());
            keys.push(key[..key.len() - 1].to_vec());
            keys.push([key, &b"x"[..]].concat());
            keys.push([&b"x"[..], key].concat());
            for i in 0..key.len() {
                for flip in [0x01, 0x20, 0x80] {
                    let mut near = key.to_vec();
                    near[i] ^= flip;
                    keys.push(near);
                }
            }
        }
        for real in [
            "RecordType",
            "Operation",
            "OrganizationId",
            "UserKey",
            "Workload",
            "ClientIP",
            "UserAgent",
            "ItemName",
            "CapacityId",
            "CapacityName",
            "ObjectId",
            "ReportType",
            "RequestId",
            "ActivityId",
            "DistributionMethod",
            "ConsumptionMethod",
            "activityEventEntities",
            "SharingInformatioN",
            "SharingInfXrmation",
        ] {
            keys.push(real.as_bytes().to_vec());
        }
        for key in &keys {
            assert_eq!(
                Field::from_key(key),
                field_named(key),
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
        assert_eq!(known.len(), 23);
    }

    const VIEW: &str = r#"{"Id":"84138fb8-bf38-4b78-83f8-ba2dc9eab73e","CreationTime":"2026-11-20T09:02:51",
        "Activity":"ViewReport","WorkSpaceName":"Sales Analytics","WorkspaceId":"f95b8b6f-ac8f-4d3c-baa0-f46d7e254acf",
        "ReportId":"7ba2c5de-f72b-49f4-a146-8bc5de3e093d","ReportName":"Pipeline Review","UserId":"Priya.Patel@contoso.com",
        "IsSuccess":true,"ModelsSnapshots":[],"ExportedArtifactInfo":{"ExportType":"PDF"}}"#;

    #[test]
    fn fields_of_an_unexpected_type_are_flagged_and_treated_as_absent() {
        let json = br#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","IsSuccess":"false","UserId":7,"ReportId":{"x":1},"UserType":"6","WorkSpaceName":null,"WorkspaceId":"w"}"#;
        let e = decode_event(json).unwrap();
        let flagged: Vec<&str> = TypedField::ALL
            .iter()
            .filter(|f| e.field_type_mismatches & f.bit() != 0)
            .map(|f| f.as_str())
            .collect();
        assert_eq!(flagged, ["IsSuccess", "ReportId", "UserId", "UserType"]);
        assert!(e.success && e.user_id.is_none() && e.report_id.is_none());
        assert_eq!(e.user_type, None);
        let plain = br#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","IsSuccess":true,"UserType":0}"#;
        assert_eq!(decode_event(plain).unwrap().field_type_mismatches, 0);
    }

    #[test]
    fn sharing_recipients_user_type_and_user_id_are_read() {
        let json = br#"{"Id":"a","Activity":"ShareReport","CreationTime":"2026-11-20T10:00:00","UserType":0,"UserId":"Ana@Contoso.com","SharingInformation":[{"RecipientEmail":"x@fabrikam.com","ResharePermission":"Read"},{"ObjectId":"g1","RecipientName":"Group"},{"UserPrincipalName":"y@contoso.com"},7]}"#;
        let e = decode_event(json).unwrap();
        assert_eq!(e.recipients, ["x@fabrikam.com", "y@contoso.com"]);
        assert_eq!(e.user_type, Some(0));
        assert_eq!(e.user_id.as_deref(), Some("Ana@Contoso.com"));
        // Inside a page the splitter's fast parser hands this event to serde: same result.
        let page = format!(
            r#"{{"activityEventEntities":[{}]}}"#,
            std::str::from_utf8(json).unwrap()
        );
        let mut seen = Vec::new();
        struct Sink<'v>(&'v mut Vec<Vec<String>>);
        impl crate::EventSink for Sink<'_> {
            fn accept(&mut self, e: &ActivityEvent<'_>) {
                self.0
                    .push(e.recipients.iter().map(|r| r.to_string()).collect());
            }
            fn reject(&mut self, _: Rejection) {}
        }
        crate::decode_slice(page.as_bytes(), &mut Sink(&mut seen)).unwrap();
        assert_eq!(seen, [["x@fabrikam.com", "y@contoso.com"]]);
        for odd in [r#""x""#, "null", "{}", "[[1]]"] {
            let json = format!(
                r#"{{"Id":"a","Activity":"ShareReport","CreationTime":"2026-11-20T10:00:00","SharingInformation":{odd}}}"#
            );
            assert!(
                decode_event(json.as_bytes()).unwrap().recipients.is_empty(),
                "{odd}"
            );
        }
    }

    #[test]
    fn decodes_a_view_and_borrows_its_strings() {
        let ev = decode_event(VIEW.as_bytes()).unwrap();
        assert_eq!(ev.activity.as_str(), "ViewReport");
        assert!(matches!(ev.activity.0, Cow::Borrowed(_)));
        assert_eq!(ev.workspace_name.as_deref(), Some("Sales Analytics"));
        assert_eq!(
            ev.report_id.as_ref().unwrap().as_str(),
            "7ba2c5de-f72b-49f4-a146-8bc5de3e093d"
        );
        assert_eq!(
            ev.user,
            Some(UserKey::from_user_id("priya.patel@contoso.com"))
        );
        assert!(ev.success);
        assert_eq!(
            ev.key,
            EventKey::from_id("84138FB8-BF38-4B78-83F8-BA2DC9EAB73E")
        );
    }

    #[test]
    fn accepts_the_workspace_name_alias_and_escaped_strings() {
        let ev = decode_event(br#"{"Id":"x1","CreationTime":"2026-11-20T09:02:51Z","Activity":"View\u0052eport","WorkspaceName":"A \"B\"","IsSuccess":false}"#).unwrap();
        assert_eq!(ev.activity.as_str(), "ViewReport");
        assert_eq!(ev.workspace_name.as_deref(), Some("A \"B\""));
        assert!(!ev.success);
        assert_eq!(ev.workspace_id, None);
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases: &[(&str, Rejection)] = &[
            ("[1,2]", Rejection::NotAnObject),
            ("{} {}", Rejection::InvalidJson),
            ("\"text\"", Rejection::NotAnObject),
            ("null", Rejection::NotAnObject),
            ("{\"Id\": tru}", Rejection::InvalidJson),
            (
                r#"{"Activity":"ViewReport","CreationTime":"2026-11-20T09:02:51"}"#,
                Rejection::MissingId,
            ),
            (
                r#"{"Id":"","Activity":"ViewReport","CreationTime":"2026-11-20T09:02:51"}"#,
                Rejection::MissingId,
            ),
            (
                r#"{"Id":"a","CreationTime":"2026-11-20T09:02:51"}"#,
                Rejection::MissingActivity,
            ),
            (
                r#"{"Id":"a","Activity":7,"CreationTime":"2026-11-20T09:02:51"}"#,
                Rejection::MissingActivity,
            ),
            (
                r#"{"Id":"a","Activity":"ViewReport"}"#,
                Rejection::MissingTime,
            ),
            (
                r#"{"Id":"a","Activity":"ViewReport","CreationTime":"soon"}"#,
                Rejection::InvalidTime,
            ),
            (
                r#"{"Id":"a","Activity":"ViewReport","CreationTime":17}"#,
                Rejection::InvalidTime,
            ),
        ];
        for (json, reason) in cases {
            assert_eq!(decode_event(json.as_bytes()).err(), Some(*reason), "{json}");
        }
    }

    /// GUID-shaped ids become lower case on both decoding paths (serde, and the splitter's
    /// fast parser), so an upper-case id from admin/groups and a mixed-case one from an event
    /// join. The ids are Microsoft's: `94E57E92-CEE2-…` and `5DBA60B0-…` from the
    /// GetGroupsAsAdmin examples (microsoft/PowerBI-CSharp `sdk/swaggers/swagger.json`,
    /// "Get workspaces with their 'reports' expanded example"), `94e57e92-Cee2-…` from the
    /// activity-log guidance samples (powerbi-docs `guidance/admin-activity-log.md`).
    /// Ids that are not GUIDs ("My Workspace") are kept as sent.
    #[test]
    fn guid_shaped_ids_are_lower_cased_and_other_ids_kept() {
        let cases = [
            (
                "94E57E92-CEE2-486D-8CC8-218C97200579",
                "5DBA60B0-D9A7-42AE-B12C-6D9D51E7739A",
                "0F084DF7-C13D-451B-AF5F-ED0C466403B2",
            ),
            (
                "94e57e92-Cee2-486d-8cc8-218c97200579",
                "197E5C3C-d2f3-42D8-A536-875FB6D7D48C",
                "Ana@Contoso.com",
            ),
            (
                "My Workspace",
                "NOT-A-GUID-BUT-THIRTY-SIX-CHARACTER",
                "ServicePrincipal App",
            ),
        ];
        let expected = |s: &str| {
            let b = s.as_bytes();
            let guid = b.len() == 36
                && b.iter().enumerate().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        *c == b'-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            if guid {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        };
        for (ws, report, user) in cases {
            let json = format!(
                r#"{{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"{ws}","ReportId":"{report}","UserId":"{user}"}}"#
            );
            let want = (expected(ws), expected(report), expected(user));
            let e = decode_event(json.as_bytes()).unwrap();
            let got = |e: &ActivityEvent<'_>| {
                (
                    e.workspace_id.as_ref().unwrap().to_string(),
                    e.report_id.as_ref().unwrap().to_string(),
                    e.user_id.as_deref().unwrap().to_string(),
                )
            };
            assert_eq!(got(&e), want, "serde path: {json}");
            struct Sink(Vec<(String, String, String)>);
            impl crate::EventSink for Sink {
                fn accept(&mut self, e: &ActivityEvent<'_>) {
                    self.0.push((
                        e.workspace_id.as_ref().unwrap().to_string(),
                        e.report_id.as_ref().unwrap().to_string(),
                        e.user_id.as_deref().unwrap().to_string(),
                    ));
                }
                fn reject(&mut self, _: Rejection) {}
            }
            let mut sink = Sink(Vec::new());
            crate::decode_slice(format!("[{json}]").as_bytes(), &mut sink).unwrap();
            assert_eq!(sink.0, [want], "fast path: {json}");
        }
    }

    #[test]
    fn optional_fields_of_the_wrong_type_are_absent() {
        let ev = decode_event(br#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T09:02:51","ReportId":{"x":1},"WorkspaceId":null,"UserId":5}"#).unwrap();
        assert_eq!((ev.report_id, ev.workspace_id, ev.user), (None, None, None));
    }
}
