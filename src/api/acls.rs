//! DescribeAcls, CreateAcls and DeleteAcls (v1–v3) as Kafka answers them without an authorizer
//! (`authorizer.class.name` unset, Kafka's default; `AclApis` in Kafka's broker): strom has none, so
//! every well-formed request gets SECURITY_DISABLED (54) — DescribeAcls once for the request,
//! CreateAcls per creation, DeleteAcls per filter — with Kafka's messages. Clients rely on that
//! answer to tell "no ACLs here" from a failure: MirrorMaker 2's ACL sync logs one INFO line and
//! stops on it, but an ERROR with a stack trace every `sync.topic.acls.interval.seconds` when the
//! API is missing.
//!
//! A filter or creation holding an UNKNOWN (code 0) resource type, pattern type, operation or
//! permission type is a malformed request to Kafka (the request classes' `validate` throws while
//! parsing): it closes the connection, and so does strom. Other codes, even ones Kafka does not
//! define, are answered like valid ones (observed from Kafka 4.4.0).

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// The UNKNOWN code of Kafka's ResourceType, PatternType, AclOperation and AclPermissionType.
const UNKNOWN: i8 = 0;

/// DescribeAcls' message (`AclApis.handleDescribeAcls`).
const DESCRIBE_MESSAGE: &str = "No Authorizer is configured on the broker";
/// CreateAcls' and DeleteAcls' message (`SecurityDisabledException` of `getErrorResponse`).
const ALTER_MESSAGE: &str = "No Authorizer is configured.";

/// Err (close the connection) if any of the four codes of a filter or creation is UNKNOWN.
fn known(what: &str, codes: [i8; 4]) -> Result<(), String> {
    if codes.contains(&UNKNOWN) {
        return Err(format!(
            "{what} contains UNKNOWN elements (resource, pattern, operation, permission: {codes:?})"
        ));
    }
    Ok(())
}

/// Answers DescribeAcls: SECURITY_DISABLED, no resources. Err: an UNKNOWN element in the filter.
pub fn describe_acls(req: &DescribeAclsRequest) -> Result<DescribeAclsResponse, String> {
    known(
        "DescribeAcls filter",
        [req.resource_type_filter, req.pattern_type_filter, req.operation, req.permission_type],
    )?;
    Ok(DescribeAclsResponse::default()
        .with_error_code(ResponseError::SecurityDisabled.code())
        .with_error_message(Some(StrBytes::from_static_str(DESCRIBE_MESSAGE))))
}

/// SECURITY_DISABLED with `ALTER_MESSAGE` for each item, in request order (`result` builds one from
/// the error code and message). Err: an UNKNOWN element in any item.
fn each_disabled<I, R>(
    items: &[I],
    what: &str,
    codes: impl Fn(&I) -> [i8; 4],
    result: impl Fn(i16, StrBytes) -> R,
) -> Result<Vec<R>, String> {
    items
        .iter()
        .map(|item| {
            known(what, codes(item))?;
            Ok(result(ResponseError::SecurityDisabled.code(), StrBytes::from_static_str(ALTER_MESSAGE)))
        })
        .collect()
}

/// Answers CreateAcls: SECURITY_DISABLED for every creation, in request order. Err: an UNKNOWN
/// element in a creation.
pub fn create_acls(req: &CreateAclsRequest) -> Result<CreateAclsResponse, String> {
    let results = each_disabled(
        &req.creations,
        "CreateAcls creation",
        |c| [c.resource_type, c.resource_pattern_type, c.operation, c.permission_type],
        |code, message| AclCreationResult::default().with_error_code(code).with_error_message(Some(message)),
    )?;
    Ok(CreateAclsResponse::default().with_results(results))
}

/// Answers DeleteAcls: SECURITY_DISABLED for every filter, nothing matched. Err: an UNKNOWN element
/// in a filter.
pub fn delete_acls(req: &DeleteAclsRequest) -> Result<DeleteAclsResponse, String> {
    let results = each_disabled(
        &req.filters,
        "DeleteAcls filter",
        |f| [f.resource_type_filter, f.pattern_type_filter, f.operation, f.permission_type],
        |code, message| {
            DeleteAclsFilterResult::default().with_error_code(code).with_error_message(Some(message))
        },
    )?;
    Ok(DeleteAclsResponse::default().with_filter_results(results))
}
