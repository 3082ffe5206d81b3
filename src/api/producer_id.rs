//! InitProducerId (v0–v5). Without a transactional id: a fresh producer id with epoch 0 each time,
//! as Kafka does for idempotent producers. With one: the transaction coordinator's answer (epoch
//! bump, fencing, KIP-360 recovery; `txn::TransactionCoordinator::init_producer_id`).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::txn::txn_error;
use super::ApiContext;

pub async fn init_producer_id(
    ctx: &ApiContext,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = req.transactional_id.as_ref().map(|t| t.to_string()) {
        if id.is_empty() {
            return fail(ResponseError::InvalidRequest);
        }
        // v3+ (KIP-360): the producer's current id and epoch, or -1/-1; one of them alone is invalid.
        let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
        if version >= 3 && ((pid == -1) != (epoch == -1)) {
            return fail(ResponseError::InvalidRequest);
        }
        if !super::groups::coordinates_txn(ctx, &id) {
            return fail(ResponseError::NotCoordinator);
        }
        let expected = (version >= 3 && pid != -1).then_some((pid, epoch));
        let (txn, timeout) = (ctx.txn.clone(), req.transaction_timeout_ms);
        let r = tokio::task::spawn_blocking(move || {
            txn.init_producer_id(&id, timeout, expected, crate::log::now_ms())
        })
        .await;
        return match r {
            Ok(Ok((pid, epoch))) => {
                InitProducerIdResponse::default().with_producer_id(ProducerId(pid)).with_producer_epoch(epoch)
            }
            Ok(Err(e)) => fail(txn_error(&e, version, 4)),
            Err(_) => fail(ResponseError::UnknownServerError),
        };
    }
    let ids = ctx.producer_ids.clone();
    match tokio::task::spawn_blocking(move || ids.next_id()).await {
        Ok(Ok(id)) => {
            InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            fail(ResponseError::UnknownServerError)
        }
        Err(_) => fail(ResponseError::UnknownServerError),
    }
}
