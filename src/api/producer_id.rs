//! InitProducerId (v0–v5) for idempotent producers: a fresh producer id with epoch 0 each time, as
//! Kafka does for producers without a transactional id. Transactions are not served yet.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::ApiContext;

pub async fn init_producer_id(
    ctx: &ApiContext,
    req: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        return fail(ResponseError::TransactionalIdAuthorizationFailed);
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
