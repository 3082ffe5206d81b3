//! Topic administration: CreateTopics (v2–v7), DeleteTopics (v1–v6), CreatePartitions (v0–v3).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{repeated, ApiContext};
use crate::cluster::topic_config::effective_configs;
use crate::cluster::{NewTopic, PartitionIncrease, Topic, TopicRef};
use crate::error::TopicError;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn created_result(ctx: &ApiContext, t: &Topic) -> CreatableTopicResult {
    let configs = effective_configs(&t.configs, &ctx.cluster.settings())
        .into_iter()
        .map(|e| {
            CreatableTopicConfigs::default()
                .with_name(text(e.name))
                .with_value(e.value.map(text))
                .with_config_source(e.source)
        })
        .collect();
    CreatableTopicResult::default()
        .with_name(TopicName(text(t.name.clone())))
        .with_topic_id(t.id)
        // Kafka 4.4 sends a null message for a created topic (the crate's default is "").
        .with_error_message(None)
        .with_num_partitions(t.partitions)
        .with_replication_factor(1)
        .with_configs(Some(configs))
}

fn failed_result(name: &str, e: &TopicError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(TopicName(text(name)))
        .with_error_code(e.code())
        .with_error_message(e.wire_message().map(text))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_configs(Some(Vec::new()))
}

pub async fn create_topics(
    ctx: &ApiContext,
    req: CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let dups = repeated(req.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(req.topics.len());
    let mut specs = Vec::new();
    for t in &req.topics {
        if dups.contains(t.name.as_str()) {
            continue;
        }
        specs.push(NewTopic {
            name: t.name.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect(),
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        });
    }
    for name in &dups {
        let e = TopicError::InvalidRequest(format!(
            "Create topics request from client contains duplicate topic name: {name}"
        ));
        results.push(failed_result(name, &e));
    }
    let outcomes = ctx.cluster.create_topics(&specs, req.validate_only).await;
    for (spec, outcome) in specs.iter().zip(outcomes) {
        results.push(match outcome {
            Ok(t) => created_result(ctx, &t),
            Err(e) => failed_result(&spec.name, &e),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// A DeleteTopics entry refused before reaching the registry.
struct RefusedRef {
    name: Option<String>,
    id: Uuid,
    error: TopicError,
}

pub async fn delete_topics(ctx: &ApiContext, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    // v6 names topics by name or id in `topics`; earlier versions list names in `topic_names`.
    let mut refs: Vec<Result<TopicRef, RefusedRef>> = Vec::new();
    if version >= 6 {
        for t in &req.topics {
            refs.push(match (&t.name, t.topic_id.is_nil()) {
                (Some(n), true) => Ok(TopicRef::Name(n.to_string())),
                (None, false) => Ok(TopicRef::Id(t.topic_id)),
                (name, _) => Err(RefusedRef {
                    name: name.as_ref().map(|n| n.to_string()),
                    id: t.topic_id,
                    error: TopicError::InvalidRequest(
                        "Exactly one of topic name or topic id must be set.".into(),
                    ),
                }),
            });
        }
    } else {
        refs.extend(req.topic_names.iter().map(|n| Ok(TopicRef::Name(n.to_string()))));
    }
    let dups = repeated(refs.iter().filter_map(|r| match r {
        Ok(TopicRef::Name(n)) => Some(n.clone()),
        _ => None,
    }));
    let mut valid = Vec::new();
    let mut responses = Vec::with_capacity(refs.len());
    for r in refs {
        match r {
            Ok(TopicRef::Name(n)) if dups.contains(&n) => {
                let e = TopicError::InvalidRequest("Duplicate topic name.".into());
                responses.push(deletion_result(Some(&n), Uuid::nil(), Some(&e)));
            }
            Ok(r) => valid.push(r),
            Err(bad) => responses.push(deletion_result(bad.name.as_deref(), bad.id, Some(&bad.error))),
        }
    }
    let outcomes = ctx.cluster.delete_topics(&valid).await;
    for (r, outcome) in valid.iter().zip(outcomes) {
        responses.push(match (r, outcome) {
            (_, Ok(t)) => {
                // Kafka allows deleting the coordinators' topics; their state goes with them at once.
                match t.name.as_str() {
                    crate::group::store::OFFSETS_TOPIC => ctx.groups.unload_all(),
                    crate::txn::topic_log::TRANSACTION_STATE_TOPIC => ctx.txn.unload_all(),
                    _ => {}
                }
                deletion_result(Some(&t.name), t.id, None)
            }
            (TopicRef::Name(n), Err(e)) => deletion_result(Some(n), Uuid::nil(), Some(&e)),
            (TopicRef::Id(id), Err(e)) => deletion_result(None, *id, Some(&e)),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// One DeleteTopics answer. Kafka's ControllerApis sends an `ApiError`'s message, which for an
/// unknown topic (or id) is the error's default text (v5+ carries it).
fn deletion_result(name: Option<&str>, id: Uuid, err: Option<&TopicError>) -> DeletableTopicResult {
    let r = DeletableTopicResult::default().with_name(name.map(|n| TopicName(text(n)))).with_topic_id(id);
    match err {
        None => r,
        Some(e) => {
            let message = e
                .wire_message()
                .or_else(|| crate::error::default_message(e.kafka_error()).map(str::to_string));
            r.with_error_code(e.code()).with_error_message(message.map(text))
        }
    }
}

pub async fn create_partitions(
    ctx: &ApiContext,
    req: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let dups = repeated(req.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(req.topics.len());
    let mut asks = Vec::new();
    for t in &req.topics {
        if dups.contains(t.name.as_str()) {
            continue;
        }
        let assignments = t
            .assignments
            .as_ref()
            .map(|a| a.iter().map(|x| x.broker_ids.iter().map(|b| b.0).collect()).collect());
        asks.push(PartitionIncrease { topic: t.name.to_string(), count: t.count, assignments });
    }
    for name in &dups {
        results.push(
            CreatePartitionsTopicResult::default()
                .with_name(TopicName(text(name.to_string())))
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(text("Duplicate topic in request."))),
        );
    }
    let outcomes = ctx.cluster.create_partitions(&asks, req.validate_only).await;
    for (ask, outcome) in asks.iter().zip(outcomes) {
        let r = CreatePartitionsTopicResult::default().with_name(TopicName(text(ask.topic.clone())));
        results.push(match outcome {
            Ok(_) => r,
            Err(e) => r.with_error_code(e.code()).with_error_message(e.wire_message().map(text)),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
