//! Networking: the listener (accept loop, connection bound, back-off) and the per-connection loop
//! (size framing, one request in flight, responses in request order, idle timeout), and the
//! broker-wide budget of request bytes (`queued.max.request.bytes`) and bound on connections
//! (`max.connections`).

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod budget;
pub mod connection;
pub mod frame;
pub mod listener;
pub mod slots;
