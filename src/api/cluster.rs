//! DescribeCluster (v0–v2): cluster id, controller and the broker list.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{authorized_ops, ApiContext};

/// DescribeCluster endpoint types (v1+): 1 asks for brokers, 2 for controllers.
const ENDPOINT_BROKERS: i8 = 1;

pub async fn describe_cluster(
    ctx: &ApiContext,
    req: DescribeClusterRequest,
    version: i16,
    listener: usize,
) -> DescribeClusterResponse {
    let cluster = &ctx.cluster;
    let config = &cluster.config;
    let endpoint = config.registered(listener);
    let node = cluster.node_id();
    let resp = DescribeClusterResponse::default().with_endpoint_type(ENDPOINT_BROKERS);
    if version >= 1 && req.endpoint_type != ENDPOINT_BROKERS {
        return resp
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )));
    }
    // Through a listener opened at run time (not registered), Kafka 4.4 lists no broker and no
    // controller.
    let (brokers, controller) = match endpoint {
        Some((host, port)) => (
            vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(node))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(i32::from(port))],
            node,
        ),
        None => (Vec::new(), -1),
    };
    let resp = resp
        .with_cluster_id(StrBytes::from_string(cluster.cluster_id().to_string()))
        .with_controller_id(BrokerId(controller))
        .with_brokers(brokers);
    if req.include_cluster_authorized_operations {
        resp.with_cluster_authorized_operations(authorized_ops::CLUSTER)
    } else {
        resp
    }
}
