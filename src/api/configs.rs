//! DescribeConfigs (v1–v4) for topics, this broker, the cluster default and groups: every config
//! with its value, source, type and (when asked) synonyms, not only the ones that were set.
//! AlterConfigs (v0–v2) and IncrementalAlterConfigs (v0–v1) for topic, broker and group configs
//! (the domain rules are in cluster::{topic_config, broker_config, group_config}). ListConfigResources (v0–v1, KIP-714/KIP-1142):
//! the resources that have configs.

use kafka_protocol::messages::alter_configs_response;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListConfigResourcesRequest,
    ListConfigResourcesResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{repeated, ApiContext};
use crate::cluster::topic_config::effective_configs;
use crate::cluster::{group_config, names, ConfigChange, ConfigOp};
use crate::error::TopicError;

/// Kafka's ConfigResource.Type codes.
mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

use crate::cluster::broker_config::ConfigEntry as Entry;

fn encode_entry(e: Entry, with_synonyms: bool) -> DescribeConfigsResourceResult {
    let synonyms = if with_synonyms {
        e.synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(text(s.name))
                    .with_value(s.value.map(text))
                    .with_source(s.source)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(text(e.name))
        .with_value(e.value.map(text))
        .with_read_only(e.read_only)
        .with_is_sensitive(e.sensitive)
        .with_config_source(e.source)
        .with_config_type(e.type_code)
        .with_synonyms(synonyms)
        .with_documentation(None)
}

fn error_result(code: i16, message: String) -> DescribeConfigsResult {
    DescribeConfigsResult::default().with_error_code(code).with_error_message(Some(text(message)))
}

fn topic_entries(ctx: &ApiContext, name: &str) -> Result<Vec<Entry>, DescribeConfigsResult> {
    if let Err(why) = names::validate_topic_name(name) {
        return Err(error_result(ResponseError::InvalidTopicException.code(), why));
    }
    let snap = ctx.cluster.snapshot();
    // Kafka answers an unknown topic with an empty message.
    let topic = snap
        .get(name)
        .ok_or_else(|| error_result(ResponseError::UnknownTopicOrPartition.code(), String::new()))?;
    Ok(effective_configs(&topic.configs, &ctx.cluster.settings())
        .into_iter()
        .map(|e| Entry {
            name: e.name.to_string(),
            value: e.value,
            source: e.source,
            type_code: e.type_code,
            read_only: false,
            sensitive: false,
            synonyms: e.synonyms,
        })
        .collect())
}

fn broker_entries(ctx: &ApiContext, name: &str) -> Result<Vec<Entry>, DescribeConfigsResult> {
    let settings = ctx.cluster.settings();
    if name.is_empty() {
        return Ok(settings.describe_cluster_default());
    }
    let node = ctx.cluster.node_id();
    let invalid = |m: String| error_result(ResponseError::InvalidRequest.code(), m);
    let id: i32 =
        name.parse().map_err(|_| invalid(format!("Broker id must be an integer, but it is: {name}")))?;
    if id != node {
        return Err(invalid(format!(
            "Unexpected broker id, expected {node} or empty string, but received {name}"
        )));
    }
    Ok(settings.describe_broker())
}

/// A BROKER_LOGGER resource: strom has no runtime-adjustable loggers to list.
fn broker_logger_entries(ctx: &ApiContext, name: &str) -> Result<Vec<Entry>, DescribeConfigsResult> {
    let node = ctx.cluster.node_id();
    let invalid = |m: String| Err(error_result(ResponseError::InvalidRequest.code(), m));
    match name.parse::<i32>() {
        _ if name.is_empty() => invalid("Broker id must not be empty".into()),
        Err(_) => invalid(format!("Broker id must be an integer, but it is: {name}")),
        Ok(id) if id != node => invalid(format!("Unexpected broker id, expected {node} but received {name}")),
        Ok(_) => Ok(Vec::new()),
    }
}

/// A GROUP resource (Kafka 4.0+): every group config, set or not, for any group name.
fn group_entries(ctx: &ApiContext, name: &str) -> Result<Vec<Entry>, DescribeConfigsResult> {
    if name.is_empty() {
        return Err(error_result(
            ResponseError::InvalidRequest.code(),
            "Group name must not be empty".into(),
        ));
    }
    let dynamic = ctx.cluster.dynamic_configs();
    let empty = Default::default();
    Ok(group_config::describe(dynamic.groups.get(name).unwrap_or(&empty), &ctx.cluster.settings()))
}

pub async fn describe_configs(
    ctx: &ApiContext,
    req: DescribeConfigsRequest,
    _version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let entries = match r.resource_type {
                resource_type::TOPIC => topic_entries(ctx, name),
                resource_type::BROKER => broker_entries(ctx, name),
                resource_type::GROUP => group_entries(ctx, name),
                resource_type::BROKER_LOGGER => broker_logger_entries(ctx, name),
                other => Err(error_result(
                    ResponseError::InvalidRequest.code(),
                    format!("Unsupported resource type {other} for DescribeConfigs"),
                )),
            };
            let result = match entries {
                Ok(entries) => {
                    // Null or empty means every config (Kafka treats both alike).
                    let wanted = r.configuration_keys.as_ref().filter(|k| !k.is_empty());
                    let configs = entries
                        .into_iter()
                        .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
                        .map(|e| encode_entry(e, req.include_synonyms))
                        .collect();
                    // Kafka's ConfigHelper sets the (empty) message of NONE too.
                    DescribeConfigsResult::default().with_error_message(Some(text(""))).with_configs(configs)
                }
                Err(err) => err,
            };
            result.with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone())
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn alter_result(
    r: Result<(), TopicError>,
    resource_type: i8,
    name: &StrBytes,
) -> AlterConfigsResourceResponse {
    let resp = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(name.clone());
    match r {
        Ok(()) => resp.with_error_message(None),
        Err(e) => resp.with_error_code(e.code()).with_error_message(e.wire_message().map(text)),
    }
}

/// Checks Kafka's ConfigAdminManager.preprocess makes before anything changes (a resource or config
/// named twice, a missing value), then that the resource is a topic, broker or group.
fn precheck_alter(
    dup_resources: &std::collections::HashSet<(i8, String)>,
    resource_type: i8,
    name: &str,
    config_names: impl Iterator<Item = String>,
    null_values: Vec<String>,
) -> Result<(), TopicError> {
    if dup_resources.contains(&(resource_type, name.to_string())) {
        return Err(TopicError::InvalidRequest("Each resource must appear at most once.".into()));
    }
    if !repeated(config_names).is_empty() {
        return Err(TopicError::InvalidRequest("Error due to duplicate config keys".into()));
    }
    if !null_values.is_empty() {
        return Err(TopicError::InvalidRequest(format!(
            "Null value not supported for : {}",
            null_values.join(", ")
        )));
    }
    if ![resource_type::TOPIC, resource_type::BROKER, resource_type::GROUP].contains(&resource_type) {
        return Err(TopicError::InvalidRequest(format!(
            "Altering configs of resource type {resource_type} is not supported"
        )));
    }
    Ok(())
}

/// Applies a config change to the resource of its type (checked by [`precheck_alter`]).
async fn alter(
    ctx: &ApiContext,
    resource_type: i8,
    name: &str,
    change: &ConfigChange,
    validate_only: bool,
) -> Result<(), TopicError> {
    match resource_type {
        resource_type::BROKER => ctx.cluster.alter_broker_configs(name, change, validate_only).await,
        resource_type::GROUP => ctx.cluster.alter_group_configs(name, change, validate_only).await,
        _ => ctx.cluster.alter_topic_configs(name, change, validate_only).await,
    }
}

/// IncrementalAlterConfigs (v0–v1): SET, DELETE, APPEND and SUBTRACT on topic, broker and group
/// configs.
pub async fn incremental_alter_configs(
    ctx: &ApiContext,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let dup_resources =
        repeated(req.resources.iter().map(|r| (r.resource_type, r.resource_name.to_string())));
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in &req.resources {
        let names = r.configs.iter().map(|c| c.name.to_string());
        let nulls = r
            .configs
            .iter()
            .filter(|c| c.config_operation != 1 && c.value.is_none())
            .map(|c| c.name.to_string())
            .collect();
        let outcome =
            if let Err(e) = precheck_alter(&dup_resources, r.resource_type, &r.resource_name, names, nulls) {
                Err(e)
            } else {
                let ops: Result<Vec<_>, TopicError> = r
                    .configs
                    .iter()
                    .map(|c| {
                        let op = match c.config_operation {
                            0 => ConfigOp::Set,
                            1 => ConfigOp::Delete,
                            2 => ConfigOp::Append,
                            3 => ConfigOp::Subtract,
                            other => {
                                return Err(TopicError::InvalidRequest(format!(
                                    "Unknown operations type {other}"
                                )))
                            }
                        };
                        Ok((c.name.to_string(), op, c.value.as_ref().map(|v| v.to_string())))
                    })
                    .collect();
                match ops {
                    Ok(ops) => {
                        let change = ConfigChange::Incremental(ops);
                        alter(ctx, r.resource_type, &r.resource_name, &change, req.validate_only).await
                    }
                    Err(e) => Err(e),
                }
            };
        responses.push(alter_result(outcome, r.resource_type, &r.resource_name));
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// AlterConfigs (v0–v2): replaces all configs of a topic, broker or group.
pub async fn alter_configs(
    ctx: &ApiContext,
    req: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let dup_resources =
        repeated(req.resources.iter().map(|r| (r.resource_type, r.resource_name.to_string())));
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in &req.resources {
        let names = r.configs.iter().map(|c| c.name.to_string());
        let nulls = r.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.to_string()).collect();
        let outcome =
            if let Err(e) = precheck_alter(&dup_resources, r.resource_type, &r.resource_name, names, nulls) {
                Err(e)
            } else {
                let pairs = r
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                let change = ConfigChange::Replace(pairs);
                alter(ctx, r.resource_type, &r.resource_name, &change, req.validate_only).await
            };
        let resp = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => resp.with_error_message(None),
            Err(e) => resp.with_error_code(e.code()).with_error_message(e.wire_message().map(text)),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The resource types ListConfigResources v1 lists, in the order Kafka 4.4 answers them whatever
/// the order asked.
const LISTED_RESOURCE_TYPES: [i8; 5] = [
    resource_type::GROUP,
    resource_type::CLIENT_METRICS,
    resource_type::BROKER_LOGGER,
    resource_type::BROKER,
    resource_type::TOPIC,
];

/// Answers ListConfigResources, as Kafka's `KafkaApis.handleListConfigResources`: v0 (formerly
/// ListClientMetricsResources) lists client-metrics subscriptions only; v1 the resources of the types
/// asked (every type when none is), an unknown type failing the whole request with
/// UNSUPPORTED_VERSION. Groups are listed only when they have configs, client metrics only when
/// a subscription exists (strom has none). This broker is listed as BROKER
/// and BROKER_LOGGER under its node id; topics by name, internal ones included.
pub async fn list_config_resources(
    ctx: &ApiContext,
    req: ListConfigResourcesRequest,
    version: i16,
) -> ListConfigResourcesResponse {
    let resp = ListConfigResourcesResponse::default();
    if version == 0 {
        return resp;
    }
    if req.resource_types.iter().any(|t| !LISTED_RESOURCE_TYPES.contains(t)) {
        return resp.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let asked = |t: i8| req.resource_types.is_empty() || req.resource_types.contains(&t);
    let node = ctx.cluster.node_id().to_string();
    let resource =
        |t: i8, name: &str| ConfigResource::default().with_resource_type(t).with_resource_name(text(name));
    let mut resources = Vec::new();
    for t in LISTED_RESOURCE_TYPES.into_iter().filter(|t| asked(*t)) {
        match t {
            resource_type::BROKER_LOGGER | resource_type::BROKER => resources.push(resource(t, &node)),
            resource_type::TOPIC => {
                resources.extend(ctx.cluster.snapshot().topics.keys().map(|name| resource(t, name)))
            }
            resource_type::GROUP => {
                resources.extend(ctx.cluster.dynamic_configs().groups.keys().map(|name| resource(t, name)))
            }
            _ => {}
        }
    }
    resp.with_config_resources(resources)
}
