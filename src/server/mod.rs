//! Networking: the listener (accept loop, connection bound, back-off) and the per-connection loop
//! (size framing, one request in flight, responses in request order, idle timeout).

pub mod connection;
pub mod frame;
pub mod listener;
