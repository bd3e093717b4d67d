//! What a transport hands the link: a connected pair of frame queues, or why it could not
//! connect. The link is written against these alone; `ws.rs` is one transport, tests hand in
//! channel pairs.

use tokio::sync::mpsc;

use super::protocol::{ClientFrame, ServerFrame};

/// Frames between the link task and a connection's socket pumps.
pub const CONN_QUEUE: usize = 1024;

/// A connected transport: frames out, frames in. `rx` ending means the connection is gone.
pub struct Conn {
    pub tx: mpsc::Sender<ClientFrame>,
    pub rx: mpsc::Receiver<ServerFrame>,
}

/// Why a connection attempt failed. `fatal` ones are not retried.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub message: String,
    pub fatal: bool,
}

impl ConnectError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fatal: false,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fatal: true,
        }
    }
}
