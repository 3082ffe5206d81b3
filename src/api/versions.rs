//! The one table of APIs and versions strom serves. ApiVersions advertises exactly this table and the
//! dispatcher refuses anything outside it, so a client can never pick a version we do not handle.
//! (Not `ApiKey::valid_versions()`: it overstates three APIs, see shared/design/PROTOCOL.md.)

use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::cluster::features::FEATURES;
use crate::cluster::Cluster;

/// (API, lowest version served, highest version served).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // Transactions (KIP-98/447), v2 (KIP-890 part 2) with EndTxn v5, TxnOffsetCommit v5 and
    // AddPartitionsToTxn v5, as the finalized `transaction.version` 2 tells clients.
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    // Admin APIs of a one-node cluster (issue 15): log dirs.
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    // ... leadership and placement.
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    // ... the metadata quorum (one voter).
    (ApiKey::DescribeQuorum, 0, 2),
    // ... topics with their eligible leader replicas (KIP-966).
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // ... the resources that have configs (KIP-714, KIP-1142).
    (ApiKey::ListConfigResources, 0, 1),
    // ... the finalized feature levels (KIP-584, `kafka-features`).
    (ApiKey::UpdateFeatures, 0, 2),
    // ACLs, answered as Kafka without an authorizer does (api/acls.rs).
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// The served version range of `key`, if the API is served at all.
pub fn served_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _, _)| *k == key).map(|(_, lo, hi)| (*lo, *hi))
}

/// Whether `version` of `key` is served.
pub fn is_served(key: ApiKey, version: i16) -> bool {
    served_range(key).is_some_and(|(lo, hi)| (lo..=hi).contains(&version))
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(k, lo, hi)| {
            ApiVersion::default().with_api_key(*k as i16).with_min_version(*lo).with_max_version(*hi)
        })
        .collect()
}

/// Kafka's rule for client software names and versions (ApiVersions v3+).
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
        _ => false,
    }
}

/// Answers an ApiVersions request of a served version. `finalized_features_epoch` (v3+) is the
/// metadata offset the levels were read at, as Kafka reports its metadata image's offset: it grows
/// with every metadata change, feature updates included (the Java client keeps the features of the
/// highest epoch it has seen).
pub fn handle(req: &ApiVersionsRequest, version: i16, cluster: &Cluster) -> ApiVersionsResponse {
    if version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        return ApiVersionsResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    // Read the epoch first: a change landing in between then shows with an older epoch, never
    // the old levels with the new epoch.
    let epoch = cluster.metadata_offset();
    let finalized = cluster.finalized_features();
    ApiVersionsResponse::default()
        .with_api_keys(api_keys())
        .with_supported_features(supported_features(version))
        .with_finalized_features_epoch(epoch)
        .with_finalized_features(
            FEATURES
                .iter()
                .filter_map(|f| finalized.get(f.name).map(|level| (f.name, *level)))
                .map(|(name, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version_level(level)
                        .with_max_version_level(level)
                })
                .collect(),
        )
}

/// The features this broker supports ([`FEATURES`]). As Kafka's
/// `ApiVersionsResponse.maybeFilterSupportedFeatureKeys`, a request below v4 is not told of features
/// whose lowest level is 0 (older clients fail to read them, KAFKA-17011).
fn supported_features(version: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|f| version >= 4 || f.min_supported > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min_supported)
                .with_max_version(f.max_supported)
        })
        .collect()
}

/// The answer to an ApiVersions request of a version we do not know: encoded as v0, error
/// UNSUPPORTED_VERSION, listing only ApiVersions' own range so the client can retry with a version
/// both know (Kafka 4.4's `ApiVersionsRequest.getErrorResponse` lists just that key).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let own = api_keys().into_iter().filter(|a| a.api_key == ApiKey::ApiVersions as i16).collect();
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_stays_within_what_the_crate_decodes() {
        for (k, lo, hi) in SUPPORTED {
            let crate_range = k.valid_versions();
            assert!(*lo >= crate_range.min && *hi <= crate_range.max && lo <= hi, "{k:?}");
        }
    }

    #[test]
    fn software_names_follow_kafka_rule() {
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("4.1.0"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }
}
