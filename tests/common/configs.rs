//! IncrementalAlterConfigs as the tests send it.

use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;

use super::{s, Client};

/// Resource types (Kafka's `ConfigResource.Type`).
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const GROUP: i8 = 32;
/// Operations (Kafka's `AlterConfigOp.OpType`).
pub const SET: i8 = 0;
pub const DELETE: i8 = 1;
pub const APPEND: i8 = 2;

/// One IncrementalAlterConfigs operation: (config name, operation, value).
pub type Op<'a> = (&'a str, i8, Option<&'a str>);

/// IncrementalAlterConfigs v1 of one resource; its (error code, error message).
pub async fn alter(c: &mut Client, rtype: i8, name: &str, ops: &[Op<'_>]) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default().with_name(s(k)).with_config_operation(*op).with_value(v.map(s))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(rtype)
        .with_resource_name(s(name))
        .with_configs(configs)]);
    let resp = c.call(&req, 1).await;
    let r = &resp.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}
