//! Fetch requests the fetch tests share.

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::FetchRequest;

/// A consumer's Fetch in a fetch session (KIP-227): `epoch` 0 opens a session, -1 closes `session_id` (or
/// fetches sessionless with id 0); min_bytes 1, so an answer without data waits `max_wait_ms` (milliseconds).
pub fn session_fetch(max_wait_ms: i32, session_id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}
