//! Fills the gaps the hub finds in a room's seqs from the store, page by page, so its
//! subscribers receive every message once and in order however the bus lost them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::net::codec;
use crate::net::protocol::ServerFrame;
use crate::server::hub::Hub;
use crate::server::store::{Backend, Store};

/// Messages fetched at a time.
const FILL_PAGE: u32 = 128;

/// How long a failed fetch waits before the gap is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown`.
pub async fn fill_gaps(hub: Arc<Hub>, store: Backend, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = hub.gap_found() => {}
            () = shutdown.cancelled() => return,
        }
        while let Some((channel, after, upto)) = hub.next_gap() {
            match store.catch_up(channel, after, upto, FILL_PAGE).await {
                Ok(messages) => {
                    let complete = messages.len() < FILL_PAGE as usize;
                    let frames = messages
                        .into_iter()
                        .filter_map(|m| {
                            let seq = m.seq;
                            let bytes = codec::encode(&ServerFrame::Message(m)).ok()?;
                            Some((seq, Bytes::from(bytes)))
                        })
                        .collect();
                    hub.fill(channel, frames, complete.then_some(upto));
                }
                Err(e) => {
                    tracing::warn!(%e, channel, "cannot fill a gap from the store; retrying");
                    hub.retry_gap(channel);
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }
}
