//! A shared log for a team, through NATS JetStream: the wire protocol
//! ([`proto`]) and JetStream's API ([`jetstream`]), pure and tested natively
//! against a real nats-server; the browser speaks them over the server's
//! WebSocket listener.

pub mod client;
pub mod consumer;
pub mod env;
pub mod gate;
pub mod jetstream;
pub mod lease;
pub mod objects;
pub mod outbox;
pub mod packs;
pub mod proto;
pub mod seal;
pub mod socket;
pub mod status;
pub mod sync;
