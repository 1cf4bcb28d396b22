//! Typed label sets: a sample's labels as a struct whose fields are named, and ordered, as the
//! catalogue's labels of every family it serves.
//!
//! Invariants:
//! - `label_set!` checks, when the crate compiles, that the fields spell the labels of each
//!   family listed, in the catalogue's order; so a sample can only carry its family's labels,
//!   in their order, and never a value in another label's place;
//! - a family's overflow series (past its cap) has every label [`OVERFLOW_LABEL`].

use crate::catalogue::{Family, Snapshot, OVERFLOW_LABEL};

/// The labels of one sample, in the order of its families' catalogue entries.
pub trait LabelSet {
    /// The families whose samples carry these labels.
    const FAMILIES: &'static [&'static Family];
    /// The label names, as the fields spell them.
    const NAMES: &'static [&'static str];
    /// The label values, in the catalogue's order.
    fn into_values(self) -> Vec<String>;
}

/// Whether `family`'s labels are `names` (a raw identifier's `r#` aside), in this order.
pub const fn labels_are(family: &Family, names: &[&str]) -> bool {
    if family.labels.len() != names.len() {
        return false;
    }
    let mut i = 0;
    while i < names.len() {
        if !bytes_eq(family.labels[i].as_bytes(), unraw(names[i].as_bytes())) {
            return false;
        }
        i += 1;
    }
    true
}

const fn unraw(name: &[u8]) -> &[u8] {
    match name {
        [b'r', b'#', rest @ ..] => rest,
        _ => name,
    }
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Defines a label set: `label_set!(Name { label, .. } for FAMILY, ..)`, the families being
/// constants of [`crate::catalogue`]. Fails to compile when the fields are not the labels of
/// every family listed, in order.
macro_rules! label_set {
    ($(#[$meta:meta])* $name:ident { $($field:ident),* } for $($family:ident),+) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(pub $field: String),*
        }

        impl $crate::aggregate::labels::LabelSet for $name {
            const FAMILIES: &'static [&'static $crate::catalogue::Family] =
                &[$(&$crate::catalogue::$family),+];
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            fn into_values(self) -> Vec<String> {
                vec![$(self.$field),*]
            }
        }

        $(
            const _: () = assert!(
                $crate::aggregate::labels::labels_are(
                    &$crate::catalogue::$family,
                    <$name as $crate::aggregate::labels::LabelSet>::NAMES,
                ),
                concat!(
                    stringify!($name),
                    ": not the labels of ",
                    stringify!($family),
                    " in the catalogue's order"
                )
            );
        )+
    };
}
pub(crate) use label_set;

label_set!(
    /// A workspace and an activity.
    WorkspaceActivity { workspace_id, activity } for ACTIVITY_EVENTS, ACTIVITY_EVENTS_FAILED,
        EXTERNAL_SHARES
);
label_set!(
    /// Why an event was skipped or left out.
    Reason { reason } for EVENTS_REJECTED, EVENTS_FILTERED
);
label_set!(
    /// A metric family, by name.
    FamilyName { family } for SERIES_DROPPED, SERIES_EXPIRED
);

/// Appends `family`'s samples.
pub fn push<L: LabelSet>(
    out: &mut Snapshot,
    family: &'static Family,
    samples: impl IntoIterator<Item = (L, f64)>,
) {
    push_capped(out, family, samples, None);
}

/// Appends `family`'s samples and, when the family overflowed its cap, its overflow series.
pub fn push_capped<L: LabelSet>(
    out: &mut Snapshot,
    family: &'static Family,
    samples: impl IntoIterator<Item = (L, f64)>,
    overflow: Option<f64>,
) {
    debug_assert!(
        L::FAMILIES.iter().any(|f| f.name == family.name),
        "{}: not a family of these labels",
        family.name
    );
    let overflow = overflow.map(|v| (vec![OVERFLOW_LABEL.to_string(); family.labels.len()], v));
    out.push(
        family,
        samples
            .into_iter()
            .map(|(labels, v)| (labels.into_values(), v))
            .chain(overflow),
    );
}

/// Appends the one sample of a family without labels.
pub fn push_value(out: &mut Snapshot, family: &'static Family, value: f64) {
    debug_assert!(family.labels.is_empty(), "{}", family.name);
    out.push(family, [(Vec::new(), value)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    #[test]
    fn labels_must_be_the_families_in_order() {
        assert!(labels_are(
            &catalogue::ACTIVITY_EVENTS,
            &["workspace_id", "activity"]
        ));
        assert!(!labels_are(
            &catalogue::ACTIVITY_EVENTS,
            &["activity", "workspace_id"]
        ));
        assert!(!labels_are(&catalogue::ACTIVITY_EVENTS, &["workspace_id"]));
        assert!(labels_are(
            &catalogue::WORKSPACE_INFO,
            &["workspace_id", "workspace_name", "r#type", "capacity_id"]
        ));
    }
}
