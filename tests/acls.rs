//! DescribeAcls, CreateAcls and DeleteAcls of a broker without an authorizer.
//!
//! Every expected value was first observed from a real Apache Kafka 4.4.0 (`scripts/kafka-reference`,
//! no `authorizer.class.name`) answering the same requests at v1, v2 and v3: ApiVersions lists the
//! three APIs at 1–3; every well-formed request gets SECURITY_DISABLED (54) with the messages below
//! (DescribeAcls once, CreateAcls per creation, DeleteAcls per filter, empty lists answered empty);
//! an UNKNOWN (0) code anywhere in a filter or creation closes the connection, while codes Kafka
//! does not define (8 as a resource type, 5 as a pattern type, 16 or -1 as an operation, 4 as a
//! permission type) are answered like valid ones.
//!
//! MirrorMaker 2 depends on this answer: its topic ACL sync stops quietly on SECURITY_DISABLED and
//! logs an ERROR every interval when the API is not served.

mod common;

use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;

const DESCRIBE_MESSAGE: &str = "No Authorizer is configured on the broker";
const ALTER_MESSAGE: &str = "No Authorizer is configured.";

/// (resource type, pattern type, operation, permission type) codes.
type Codes = (i8, i8, i8, i8);

fn describe(c: Codes) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(c.0)
        .with_pattern_type_filter(c.1)
        .with_operation(c.2)
        .with_permission_type(c.3)
}

fn creation(c: Codes, name: &str, principal: &str) -> AclCreation {
    AclCreation::default()
        .with_resource_type(c.0)
        .with_resource_name(s(name))
        .with_resource_pattern_type(c.1)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(c.2)
        .with_permission_type(c.3)
}

fn delete_filter(c: Codes) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(c.0)
        .with_pattern_type_filter(c.1)
        .with_operation(c.2)
        .with_permission_type(c.3)
}

/// Filters Kafka answers: MirrorMaker's (TOPIC, ANY, ANY, ANY), all ANY, a LITERAL topic, undefined
/// codes, PREFIXED with ALL and DENY.
const ANSWERED: &[Codes] =
    &[(2, 1, 1, 1), (1, 1, 1, 1), (2, 3, 3, 3), (8, 5, 16, 4), (2, 3, -1, 1), (7, 4, 2, 2)];
/// One UNKNOWN code each: Kafka closes the connection.
const MALFORMED: &[Codes] = &[(0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0)];

#[tokio::test]
async fn api_versions_lists_the_acl_apis_at_1_to_3() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    let r = c.call(&ApiVersionsRequest::default(), 2).await;
    let ranges: Vec<(i16, i16, i16)> = r
        .api_keys
        .iter()
        .filter(|a| [29, 30, 31].contains(&a.api_key))
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    assert_eq!(ranges, vec![(29, 1, 3), (30, 1, 3), (31, 1, 3)]);
    b.stop().await;
}

#[tokio::test]
async fn describe_acls_is_security_disabled() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    for v in 1..=3 {
        for &codes in ANSWERED {
            let r = c.call(&describe(codes), v).await;
            assert_eq!(r.error_code, 54, "v{v} {codes:?}");
            assert_eq!(r.error_message.as_deref(), Some(DESCRIBE_MESSAGE), "v{v} {codes:?}");
            assert!(r.resources.is_empty(), "v{v} {codes:?}");
            assert_eq!(r.throttle_time_ms, 0);
        }
        let named = describe((2, 3, 1, 1)).with_resource_name_filter(Some(s("t")));
        assert_eq!(c.call(&named, v).await.error_code, 54, "v{v} named filter");
    }
    b.stop().await;
}

#[tokio::test]
async fn create_acls_is_security_disabled_per_creation() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    for v in 1..=3 {
        // Kafka checks names (CLUSTER's must be kafka-cluster, none empty) only with an authorizer.
        let creations = vec![
            creation((2, 3, 3, 3), "t", "User:alice"),
            creation((4, 3, 3, 3), "kafka-cluster", "User:alice"),
            creation((2, 3, 3, 3), "", "alice"),
            creation((1, 1, 1, 1), "t", ""),
            creation((8, 5, 16, 4), "t", "User:"),
        ];
        let r = c.call(&CreateAclsRequest::default().with_creations(creations), v).await;
        let got: Vec<(i16, Option<String>)> = r
            .results
            .iter()
            .map(|x| (x.error_code, x.error_message.as_ref().map(|m| m.to_string())))
            .collect();
        assert_eq!(got, vec![(54, Some(ALTER_MESSAGE.to_string())); 5], "v{v}");
        let empty = c.call(&CreateAclsRequest::default(), v).await;
        assert!(empty.results.is_empty(), "v{v}");
    }
    b.stop().await;
}

#[tokio::test]
async fn delete_acls_is_security_disabled_per_filter() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    for v in 1..=3 {
        let filters: Vec<DeleteAclsFilter> = ANSWERED.iter().map(|&f| delete_filter(f)).collect();
        let r = c.call(&DeleteAclsRequest::default().with_filters(filters), v).await;
        assert_eq!(r.filter_results.len(), ANSWERED.len(), "v{v}");
        for f in &r.filter_results {
            assert_eq!((f.error_code, f.error_message.as_deref()), (54, Some(ALTER_MESSAGE)), "v{v}");
            assert!(f.matching_acls.is_empty(), "v{v}");
        }
        let empty = c.call(&DeleteAclsRequest::default(), v).await;
        assert!(empty.filter_results.is_empty(), "v{v}");
    }
    b.stop().await;
}

#[tokio::test]
async fn an_unknown_code_closes_the_connection() {
    let b = TestBroker::start().await;
    for v in 1..=3 {
        for &codes in MALFORMED {
            let mut c = b.client().await;
            c.send(&describe(codes), v).await;
            c.expect_closed(&format!("DescribeAcls v{v} {codes:?}")).await;

            let mut c = b.client().await;
            // One good filter does not save the request.
            c.send(
                &DeleteAclsRequest::default()
                    .with_filters(vec![delete_filter((1, 1, 1, 1)), delete_filter(codes)]),
                v,
            )
            .await;
            c.expect_closed(&format!("DeleteAcls v{v} {codes:?}")).await;

            let mut c = b.client().await;
            c.send(&CreateAclsRequest::default().with_creations(vec![creation(codes, "t", "User:a")]), v)
                .await;
            c.expect_closed(&format!("CreateAcls v{v} {codes:?}")).await;
        }
    }
    // The broker still serves new connections.
    let mut c = b.client().await;
    assert_eq!(c.call(&describe((1, 1, 1, 1)), 3).await.error_code, 54);
    b.stop().await;
}
