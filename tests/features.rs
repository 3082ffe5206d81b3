//! UpdateFeatures (v0–v2) and the finalized feature levels ApiVersions reports, over real TCP.
//! Every expected code and message was taken from Apache Kafka 4.4.0 (a one-node KRaft broker from
//! `scripts/kafka-reference`, node id 1, asked the same requests and `kafka-features`).

mod common;

use common::{s, Client, TestBroker};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, UpdateFeaturesRequest, UpdateFeaturesResponse,
};

const SAFE: i8 = 2;
const UNSAFE: i8 = 3;
const UPGRADE: i8 = 1;
const FAILED: &str = "The update failed for all features since the following feature had an error: ";

fn update(name: &str, level: i16, upgrade_type: i8) -> FeatureUpdateKey {
    FeatureUpdateKey::default()
        .with_feature(s(name))
        .with_max_version_level(level)
        .with_upgrade_type(upgrade_type)
}

async fn send(
    c: &mut Client,
    v: i16,
    updates: Vec<FeatureUpdateKey>,
    validate_only: bool,
) -> UpdateFeaturesResponse {
    let req =
        UpdateFeaturesRequest::default().with_feature_updates(updates).with_validate_only(validate_only);
    c.call(&req, v).await
}

async fn api_versions(c: &mut Client) -> ApiVersionsResponse {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(s("strom-tests"))
        .with_client_software_version(s("1.0"));
    c.call(&req, 4).await
}

fn finalized(r: &ApiVersionsResponse) -> Vec<(String, i16)> {
    r.finalized_features.iter().map(|f| (f.name.to_string(), f.max_version_level)).collect()
}

fn level(r: &ApiVersionsResponse, name: &str) -> Option<i16> {
    r.finalized_features.iter().find(|f| f.name.as_str() == name).map(|f| f.max_version_level)
}

#[tokio::test]
async fn refusals_are_a_top_level_invalid_update_version_with_kafkas_reason() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let tv = "transaction.version";
    let cases: Vec<(FeatureUpdateKey, String)> = vec![
        (update(tv, 1, UPGRADE), "Invalid update version 1 for feature transaction.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.".into()),
        (update(tv, 3, UPGRADE), "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2".into()),
        (update(tv, -1, SAFE), "Invalid update version -1 for feature transaction.version. A feature version cannot be less than 0.".into()),
        (update(tv, 1, 4), "Invalid update version 1 for feature transaction.version. The controller does not support the given upgrade type.".into()),
        (update(tv, 1, 0), "Invalid update version 1 for feature transaction.version. The controller does not support the given upgrade type.".into()),
        (update("foo.bar", 1, UPGRADE), "Invalid update version 1 for feature foo.bar. Local controller 1 does not support this feature.".into()),
        (update("foo.bar", 0, SAFE), "Invalid update version 0 for feature foo.bar. Feature foo.bar not found.".into()),
        (update("kraft.version", 0, SAFE), "Invalid update version 0 for feature kraft.version. Can't downgrade the version of this feature.".into()),
        (update("kraft.version", 2, UPGRADE), "Invalid update version 2 for feature kraft.version. Local controller 1 only supports versions 0-1".into()),
        (update("metadata.version", 34, UPGRADE), "Invalid update version 34 for feature metadata.version. Local controller 1 only supports versions 7-33".into()),
        (update("metadata.version", 6, SAFE), "Invalid update version 6 for feature metadata.version. Local controller 1 only supports versions 7-33".into()),
        (update("metadata.version", 32, SAFE), "Unsupported metadata.version downgrade from 33 to 32. Refusing to perform the requested downgrade because it might delete metadata information.".into()),
        (update("metadata.version", 7, SAFE), "Unsupported metadata.version downgrade from 33 to 7. Refusing to perform the requested downgrade because it might delete metadata information.".into()),
        (update("metadata.version", 20, UNSAFE), "Unsupported metadata.version downgrade from 33 to 20. Unsafe metadata downgrade is not supported in this version.".into()),
    ];
    for (u, why) in cases {
        for v in [1, 2] {
            for validate_only in [true, false] {
                let r = send(&mut c, v, vec![u.clone()], validate_only).await;
                assert_eq!(r.error_code, 95, "INVALID_UPDATE_VERSION for {u:?} v{v}");
                assert_eq!(r.error_message.as_deref(), Some(format!("{FAILED}{why}").as_str()), "v{v}");
                assert!(r.results.is_empty(), "no per-feature results with a top-level error: {r:?}");
            }
        }
    }
    // One bad update fails them all, at v1 too.
    let r = send(&mut c, 1, vec![update(tv, 1, SAFE), update("foo.bar", 1, UPGRADE)], false).await;
    assert_eq!(r.error_code, 95);
    assert!(r.results.is_empty());
    // Nothing changed.
    let av = api_versions(&mut c).await;
    assert_eq!(level(&av, tv), Some(2));
    assert_eq!(av.finalized_features_epoch, 1, "no metadata change was made");
    broker.stop().await;
}

#[tokio::test]
async fn success_has_no_message_and_results_only_below_v2() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let ok = [
        update("transaction.version", 1, SAFE),
        update("transaction.version", 1, UNSAFE),
        update("transaction.version", 0, SAFE),
        update("transaction.version", 2, UPGRADE),
        update("transaction.version", 2, SAFE),
        update("kraft.version", 1, UPGRADE),
        update("kraft.version", 1, SAFE),
        update("metadata.version", 33, UPGRADE),
        update("eligible.leader.replicas.version", 0, SAFE),
    ];
    for u in ok {
        let r = send(&mut c, 2, vec![u.clone()], true).await;
        assert_eq!((r.error_code, r.error_message.as_deref(), r.results.len()), (0, None, 0), "{u:?}");
        let r = send(&mut c, 1, vec![u.clone()], true).await;
        assert_eq!((r.error_code, r.error_message.as_deref()), (0, None), "{u:?}");
        let results: Vec<_> = r
            .results
            .iter()
            .map(|x| (x.feature.to_string(), x.error_code, x.error_message.as_deref()))
            .collect();
        assert_eq!(results, vec![(u.feature.to_string(), 0, Some("NONE"))]);
    }
    // No updates at all: success, nothing to list.
    let r = send(&mut c, 1, vec![], false).await;
    assert_eq!((r.error_code, r.error_message.as_deref(), r.results.len()), (0, None, 0));
    let av = api_versions(&mut c).await;
    assert_eq!(level(&av, "transaction.version"), Some(2), "validate_only changes nothing");
    assert_eq!(av.finalized_features_epoch, 1);
    broker.stop().await;
}

#[tokio::test]
async fn v0_ignores_allow_downgrade() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let down = FeatureUpdateKey::default()
        .with_feature(s("transaction.version"))
        .with_max_version_level(1)
        .with_allow_downgrade(true);
    let r = send(&mut c, 0, vec![down], false).await;
    assert_eq!(r.error_code, 95);
    assert!(
        r.error_message.as_deref().is_some_and(
            |m| m.ends_with("without setting the upgrade type to either safe or unsafe downgrade.")
        )
    );
    let same = FeatureUpdateKey::default().with_feature(s("transaction.version")).with_max_version_level(2);
    let r = send(&mut c, 0, vec![same], false).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn changes_show_in_api_versions_with_a_new_epoch_and_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let before = api_versions(&mut c).await;
    assert_eq!(
        finalized(&before),
        vec![
            ("kraft.version".to_string(), 1),
            ("metadata.version".to_string(), 33),
            ("transaction.version".to_string(), 2),
            ("eligible.leader.replicas.version".to_string(), 1)
        ]
    );
    let r = send(&mut c, 2, vec![update("transaction.version", 1, SAFE)], false).await;
    assert_eq!(r.error_code, 0);
    let after = api_versions(&mut c).await;
    assert_eq!(level(&after, "transaction.version"), Some(1));
    assert!(after.finalized_features_epoch > before.finalized_features_epoch);
    // Kafka removes a feature disabled to level 0 from the finalized list, and counts a change
    // that keeps the level as a change too.
    send(&mut c, 2, vec![update("transaction.version", 0, UNSAFE)], false).await;
    let disabled = api_versions(&mut c).await;
    assert_eq!(level(&disabled, "transaction.version"), None);
    assert!(disabled.finalized_features_epoch > after.finalized_features_epoch);
    let r = send(&mut c, 2, vec![update("eligible.leader.replicas.version", 1, UPGRADE)], false).await;
    assert_eq!(r.error_code, 0);
    let same = api_versions(&mut c).await;
    assert!(same.finalized_features_epoch > disabled.finalized_features_epoch);
    // The supported ranges do not change with the finalized levels.
    assert_eq!(same.supported_features, before.supported_features);

    broker.restart().await;
    let mut c = broker.client().await;
    let reopened = api_versions(&mut c).await;
    assert_eq!(finalized(&reopened), finalized(&same));
    assert_eq!(reopened.finalized_features_epoch, same.finalized_features_epoch);
    broker.stop().await;
}
