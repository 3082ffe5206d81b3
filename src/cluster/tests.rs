use super::*;
use crate::config::CliOverrides;

fn cluster_in(dir: &Path) -> Cluster {
    let cli = CliOverrides { data_dir: Some(dir.to_path_buf()), ..Default::default() };
    let config = Config::build(&BTreeMap::new(), &[], &cli, "test").unwrap();
    let logs = Arc::new(LogManager::open(dir, 64).unwrap());
    Cluster::open(Arc::new(config), logs).unwrap()
}

fn spec(name: &str, partitions: i32) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: vec![],
        configs: vec![],
    }
}

#[tokio::test]
async fn topics_ids_and_configs_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (id, cluster_id) = {
        let c = cluster_in(dir.path());
        let mut s = spec("orders", 3);
        s.configs = vec![("retention.ms".into(), Some("12345".into()))];
        let t = c.create_topics(&[s], false).await.remove(0).unwrap();
        (t.id, c.cluster_id().to_string())
    };
    let c = cluster_in(dir.path());
    assert_eq!(c.cluster_id(), cluster_id);
    let snap = c.snapshot();
    let t = snap.get("orders").unwrap();
    assert_eq!((t.id, t.partitions), (id, 3));
    assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("12345"));
    assert!(dir.path().join("orders-2").is_dir());
    assert_eq!(cluster_id.len(), 22);
}

#[tokio::test]
async fn create_errors_match_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster_in(dir.path());
    c.create_topics(&[spec("a.b", 1)], false).await.remove(0).unwrap();
    let mut rf3 = spec("x", 1);
    rf3.replication_factor = 3;
    let mut bad_cfg = spec("y", 1);
    bad_cfg.configs = vec![("no.such".into(), Some("1".into()))];
    let r = c
        .create_topics(
            &[spec("a.b", 1), spec("a_b", 1), spec("bad/name", 1), spec("z", 0), rf3, bad_cfg],
            false,
        )
        .await;
    let codes: Vec<i16> = r.iter().map(|r| r.as_ref().unwrap_err().code()).collect();
    assert_eq!(codes, vec![36, 17, 17, 37, 38, 40]);
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster_in(dir.path());
    assert!(c.create_topics(&[spec("t", 2)], true).await[0].is_ok());
    assert!(c.snapshot().get("t").is_none());
    assert!(!dir.path().join("t-0").exists());
}

#[tokio::test]
async fn delete_by_name_and_id_removes_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster_in(dir.path());
    let t1 = c.create_topics(&[spec("one", 2)], false).await.remove(0).unwrap();
    c.create_topics(&[spec("two", 1)], false).await.remove(0).unwrap();
    let r = c
        .delete_topics(&[TopicRef::Id(t1.id), TopicRef::Name("two".into()), TopicRef::Name("nope".into())])
        .await;
    assert!(r[0].is_ok() && r[1].is_ok());
    assert_eq!(r[2].as_ref().unwrap_err().code(), 3);
    assert!(c.snapshot().topics.is_empty());
    // Data removal runs in the background; wait for it briefly.
    for _ in 0..100 {
        if !dir.path().join("one-0").exists() && !dir.path().join("two-0").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!dir.path().join("one-0").exists());
    assert_eq!(c.delete_topics(&[TopicRef::Id(t1.id)]).await[0].as_ref().unwrap_err().code(), 100);
    drop(c);
    assert!(cluster_in(dir.path()).snapshot().topics.is_empty());
}

fn grow(topic: &str, count: i32) -> PartitionIncrease {
    PartitionIncrease { topic: topic.into(), count, assignments: None }
}

#[tokio::test]
async fn partitions_only_grow() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster_in(dir.path());
    c.create_topics(&[spec("g", 3)], false).await.remove(0).unwrap();
    let r = c.create_partitions(&[grow("g", 2), grow("g", 3), grow("nope", 5)], false).await;
    assert_eq!(r.iter().map(|r| r.as_ref().unwrap_err().code()).collect::<Vec<_>>(), vec![37, 37, 3]);
    assert_eq!(c.create_partitions(&[grow("g", 5)], false).await[0].as_ref().unwrap().partitions, 5);
    assert!(dir.path().join("g-4").is_dir());
    assert_eq!(c.snapshot().get("g").unwrap().partitions, 5);
}

#[tokio::test]
async fn corrupt_metadata_file_is_refused_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = cluster_in(dir.path());
        c.create_topics(&[spec("keep", 1)], false).await.remove(0).unwrap();
    }
    let p = metadata_path(dir.path());
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&p, bytes).unwrap();
    let cli = CliOverrides { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let config = Config::build(&BTreeMap::new(), &[], &cli, "test").unwrap();
    let logs = Arc::new(LogManager::open(dir.path(), 64).unwrap());
    assert!(Cluster::open(Arc::new(config), logs).is_err());
}

#[test]
fn a_metadata_file_without_dynamic_configs_loads_as_freshly_formatted() {
    let dir = tempfile::tempdir().unwrap();
    // A file as strom wrote it before dynamic configs existed.
    let old = Persisted {
        cluster_id: "abc".into(),
        topics: vec![],
        metadata_changes: 3,
        configs: None,
        finalized_features: features::initial_levels(),
    };
    store::write_atomic(&metadata_path(dir.path()), &old).unwrap();
    let c = cluster_in(dir.path());
    assert_eq!(c.cluster_id(), "abc");
    let d = c.dynamic_configs();
    assert_eq!(d.cluster_default.get("min.insync.replicas").map(String::as_str), Some("1"));
    assert!(d.broker.is_empty() && d.groups.is_empty());
}

#[test]
fn metadata_files_without_feature_levels_load_the_initial_ones() {
    let p: Persisted =
        serde_json::from_str(r#"{"cluster_id":"c","topics":[],"metadata_changes":4}"#).unwrap();
    assert_eq!(p.finalized_features, features::initial_levels());
    assert_eq!(p.finalized_features.get(features::TRANSACTION_VERSION), Some(&2));
}

#[tokio::test]
async fn feature_updates_are_persisted_and_count_as_metadata_changes() {
    let dir = tempfile::tempdir().unwrap();
    let update = features::FeatureUpdate {
        feature: features::TRANSACTION_VERSION.into(),
        level: 1,
        upgrade_type: features::UpgradeType::SafeDowngrade,
    };
    {
        let c = cluster_in(dir.path());
        c.update_features(std::slice::from_ref(&update), true).await.unwrap();
        assert_eq!(c.metadata_offset(), 1, "validate_only changes nothing");
        c.update_features(&[update], false).await.unwrap();
        assert_eq!(c.metadata_offset(), 2);
        c.create_topics(&[spec("t", 1)], false).await.remove(0).unwrap();
    }
    let c = cluster_in(dir.path());
    assert_eq!(
        c.finalized_features().get(features::TRANSACTION_VERSION),
        Some(&1),
        "kept by a topic change too"
    );
    assert_eq!(c.metadata_offset(), 3);
}
