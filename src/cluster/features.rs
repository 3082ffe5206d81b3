//! Feature flags (KIP-584): the levels this broker supports and the rules for changing the levels
//! finalized for the cluster (UpdateFeatures), as Kafka 4.4's `FeatureControlManager.updateFeature`.
//! The finalized levels are persisted with the topics (see [`super::Cluster::update_features`]).

use std::collections::BTreeMap;

use crate::txn::model::TV_2;

/// The feature that selects transactions v1 or v2 in clients (KIP-890, Kafka's `TransactionVersion`).
pub const TRANSACTION_VERSION: &str = "transaction.version";
/// The metadata log's format version (Kafka's `MetadataVersion`).
pub const METADATA_VERSION: &str = "metadata.version";
/// The KRaft quorum's version (KIP-853); changed through the quorum, never downgraded.
pub const KRAFT_VERSION: &str = "kraft.version";

/// A feature flag: the levels this broker supports and the level a new cluster finalizes. The levels
/// are Kafka 4.4.0's for a new single-node KRaft cluster (its ApiVersions answer), restricted to the
/// features whose behaviour strom has: `metadata.version` 7 (3.3-IV3) to 33 (4.4-IV2),
/// `kraft.version` 1 (a single voter, KIP-853), `transaction.version` 2 (KIP-890),
/// `eligible.leader.replicas.version` 1 (KIP-966; the lists are empty on one node).
/// `group.version`, `share.version` and `streams.version` come with the new group protocols.
pub struct Feature {
    pub name: &'static str,
    pub min_supported: i16,
    pub max_supported: i16,
    /// The level finalized when the cluster is created.
    pub initial: i16,
}

/// Every feature strom supports, in the order Kafka 4.4 lists them in ApiVersions.
pub const FEATURES: &[Feature] = &[
    Feature { name: KRAFT_VERSION, min_supported: 0, max_supported: 1, initial: 1 },
    Feature { name: METADATA_VERSION, min_supported: 7, max_supported: 33, initial: 33 },
    Feature { name: TRANSACTION_VERSION, min_supported: 0, max_supported: TV_2, initial: TV_2 },
    Feature { name: "eligible.leader.replicas.version", min_supported: 0, max_supported: 1, initial: 1 },
];

/// Finalized levels by feature name; a feature at level 0 is absent (Kafka removes it).
pub type FinalizedLevels = BTreeMap<String, i16>;

/// The levels a new cluster finalizes.
pub fn initial_levels() -> FinalizedLevels {
    FEATURES.iter().map(|f| (f.name.to_string(), f.initial)).collect()
}

/// How a level may change (UpdateFeatures `UpgradeType`, Kafka's `FeatureUpdate.UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    /// A code Kafka does not know (anything but 1–3).
    Unknown,
}

impl UpgradeType {
    /// From the wire code (1 upgrade, 2 safe downgrade, 3 unsafe downgrade).
    pub fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One requested change: feature, new level, how.
#[derive(Debug, Clone)]
pub struct FeatureUpdate {
    pub feature: String,
    pub level: i16,
    pub upgrade_type: UpgradeType,
}

/// Checks `updates` against `current` and returns the levels after them, or Kafka's reason for
/// refusing the first bad one (reported with INVALID_UPDATE_VERSION). A feature named twice takes its
/// last update, as Kafka's controller keys the updates by name. `node_id` names the controller in
/// Kafka's messages.
pub fn apply(
    current: &FinalizedLevels,
    updates: &[FeatureUpdate],
    node_id: i32,
) -> Result<FinalizedLevels, String> {
    let mut last: Vec<&FeatureUpdate> = Vec::with_capacity(updates.len());
    for u in updates {
        match last.iter_mut().find(|l| l.feature == u.feature) {
            Some(l) => *l = u,
            None => last.push(u),
        }
    }
    let mut next = current.clone();
    for u in last {
        check(current, u, node_id)?;
        if u.level == 0 {
            next.remove(&u.feature);
        } else {
            next.insert(u.feature.clone(), u.level);
        }
    }
    Ok(next)
}

/// Kafka's `updateFeature` checks, in its order.
fn check(current: &FinalizedLevels, u: &FeatureUpdate, node_id: i32) -> Result<(), String> {
    let (name, level) = (u.feature.as_str(), u.level);
    let invalid = |why: &str| format!("Invalid update version {level} for feature {name}. {why}");
    if u.upgrade_type == UpgradeType::Unknown {
        return Err(invalid("The controller does not support the given upgrade type."));
    }
    let cur = current.get(name).copied().unwrap_or(0);
    if level < 0 {
        return Err(invalid("A feature version cannot be less than 0."));
    }
    let Some(feature) = FEATURES.iter().find(|f| f.name == name) else {
        // Level 0 of an unknown feature is "supported" (disabled), and then not found.
        return Err(if level == 0 {
            invalid(&format!("Feature {name} not found."))
        } else {
            invalid(&format!("Local controller {node_id} does not support this feature."))
        });
    };
    if !(feature.min_supported..=feature.max_supported).contains(&level) {
        return Err(invalid(&format!(
            "Local controller {node_id} only supports versions {}-{}",
            feature.min_supported, feature.max_supported
        )));
    }
    if level < cur && u.upgrade_type == UpgradeType::Upgrade {
        return Err(invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
        ));
    }
    if level > cur && u.upgrade_type != UpgradeType::Upgrade {
        return Err(invalid("Can't downgrade to a newer version."));
    }
    match name {
        // Every metadata.version below 4.4-IV2 lacks metadata that 4.4-IV2 has, so Kafka refuses
        // each downgrade from it (`MetadataVersion.checkIfMetadataChanged`).
        METADATA_VERSION if level < cur => {
            let why = if u.upgrade_type == UpgradeType::UnsafeDowngrade {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            Err(format!("Unsupported metadata.version downgrade from {cur} to {level}. {why}"))
        }
        // The quorum's version only moves up, through the quorum (KIP-853).
        KRAFT_VERSION if u.upgrade_type != UpgradeType::Upgrade && level != cur => {
            Err(invalid("Can't downgrade the version of this feature."))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(feature: &str, level: i16, code: i8) -> FeatureUpdate {
        FeatureUpdate { feature: feature.into(), level, upgrade_type: UpgradeType::from_code(code) }
    }

    #[test]
    fn transaction_version_downgrades_and_disables() {
        let cur = initial_levels();
        let next = apply(&cur, &[up(TRANSACTION_VERSION, 1, 2)], 1).unwrap();
        assert_eq!(next.get(TRANSACTION_VERSION), Some(&1));
        let next = apply(&cur, &[up(TRANSACTION_VERSION, 0, 3)], 1).unwrap();
        assert_eq!(next.get(TRANSACTION_VERSION), None, "level 0 removes the feature");
    }

    #[test]
    fn the_last_update_of_a_feature_wins() {
        let next =
            apply(&initial_levels(), &[up(TRANSACTION_VERSION, 1, 2), up(TRANSACTION_VERSION, 0, 2)], 1);
        assert_eq!(next.unwrap().get(TRANSACTION_VERSION), None);
    }

    #[test]
    fn refusals_carry_kafkas_reasons() {
        let cur = initial_levels();
        let e = apply(&cur, &[up(METADATA_VERSION, 32, 2)], 1).unwrap_err();
        assert!(e.starts_with("Unsupported metadata.version downgrade from 33 to 32."), "{e}");
        let e = apply(&cur, &[up(KRAFT_VERSION, 0, 2)], 1).unwrap_err();
        assert!(e.ends_with("Can't downgrade the version of this feature."), "{e}");
        let e = apply(&cur, &[up("foo", 0, 2)], 3).unwrap_err();
        assert!(e.ends_with("Feature foo not found."), "{e}");
    }
}
