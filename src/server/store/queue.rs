//! The bound on work waiting for a store's writer, shared by the backends: every job counts
//! its bytes against one budget and gives them back once done, so a burst of requests makes
//! callers wait (and their connections stop being read) instead of growing the server.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net::protocol::ProtocolError;

/// Bytes of work that may wait for the store across all connections.
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// What a job counts against the bound beside its message body.
pub const JOB_BYTES: usize = 256;

/// Room in the queue, shared by every clone of a store.
#[derive(Clone)]
pub struct Room {
    free: Arc<Semaphore>,
    /// The bound it started with: no single job may need more.
    max: usize,
}

impl Room {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(max_bytes)),
            max: max_bytes,
        }
    }

    /// Waits until `bytes` more fit; the permit gives them back when dropped.
    pub async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ProtocolError> {
        let bytes = u32::try_from(bytes.min(self.max)).unwrap_or(u32::MAX);
        self.free
            .clone()
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| stopped())
    }
}

/// What callers hear once the store's writer is gone.
pub fn stopped() -> ProtocolError {
    ProtocolError::internal("the store has stopped")
}
