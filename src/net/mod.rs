//! The shared layer: everything both ends of the wire agree on, and the client link.
//!
//! Depends on nothing else of ours and on nothing UI- or database-shaped; `server`, `app`,
//! `agent` and `cli` all build on it. A type two of those need belongs here.

pub mod client;
pub mod codec;
pub mod config;
pub mod human_key;
pub mod identity;
pub mod link;
pub mod local;
pub mod names;
pub mod protocol;
pub mod servers;
pub mod text;
pub mod transport;
pub mod ws;
