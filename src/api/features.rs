//! UpdateFeatures (v0–v2, `kafka-features upgrade|downgrade|disable`): changes the finalized feature
//! levels as Kafka 4.4's `QuorumController.updateFeatures` does. The checks are
//! [`crate::cluster::features::apply`]'s; this file maps them to the wire:
//! - a refusal is a top-level INVALID_UPDATE_VERSION whose message is Kafka's "The update failed for
//!   all features since the following feature had an error: " and the reason, with no results;
//! - success is error 0 with a null message, and below v2 one result per requested update (code 0,
//!   message "NONE", as Kafka fills in `Errors.NONE.message()`); v2 has none;
//! - v0's `AllowDowngrade` is ignored: Kafka's controller reads the upgrade type, which v0 leaves at
//!   its default, upgrade.

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::ApiContext;
use crate::cluster::features::{FeatureUpdate, UpgradeType, TRANSACTION_VERSION};
use crate::cluster::FeatureUpdateError;

/// Kafka's prefix of a refusal's message.
const FAILED_FOR_ALL: &str = "The update failed for all features since the following feature had an error: ";

/// Answers UpdateFeatures.
pub async fn update_features(
    ctx: &ApiContext,
    req: UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    let updates: Vec<FeatureUpdate> = req
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            feature: u.feature.to_string(),
            level: u.max_version_level,
            upgrade_type: UpgradeType::from_code(u.upgrade_type),
        })
        .collect();
    let resp = UpdateFeaturesResponse::default().with_error_message(None);
    let outcome = ctx.cluster.update_features(&updates, req.validate_only).await;
    // The coordinator's own aborts follow the finalized transaction.version.
    ctx.txn.set_transaction_version(ctx.cluster.finalized_level(TRANSACTION_VERSION));
    match outcome {
        Ok(()) if version <= 1 => resp.with_results(
            req.feature_updates
                .iter()
                .map(|u| {
                    UpdatableFeatureResult::default()
                        .with_feature(u.feature.clone())
                        .with_error_code(0)
                        .with_error_message(Some(StrBytes::from_static_str("NONE")))
                })
                .collect(),
        ),
        Ok(()) => resp,
        Err(FeatureUpdateError::Invalid(why)) => resp
            .with_error_code(ResponseError::InvalidUpdateVersion.code())
            .with_error_message(Some(StrBytes::from_string(format!("{FAILED_FOR_ALL}{why}")))),
        Err(FeatureUpdateError::Storage(e)) => {
            tracing::error!(error = %e, "persisting finalized features failed");
            resp.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
