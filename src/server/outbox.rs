//! One connection's outbound side as the rest of the server sees it: a queue of encoded frames
//! bounded both in frames and in bytes, and the `Control` that tells the connection to close.
//! Whoever fills a queue past either bound disconnects that connection as too slow (it
//! reconnects and catches up from history) instead of growing the server's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::net::codec;
use crate::net::protocol::{CloseReason, ServerFrame};

/// Bytes that may wait for one connection: a few of the largest answers (1 MiB each), so a
/// client that asks and never reads costs the server at most this much.
pub const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// Tells one connection to close, and why. Shared by the hub (which kicks) and the
/// connection's tasks (which obey).
#[derive(Debug)]
pub struct Control {
    cancel: CancellationToken,
    reason: Mutex<Option<(CloseReason, String)>>,
}

impl Control {
    /// A control that also fires when `shutdown` does.
    pub fn new(shutdown: &CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            cancel: shutdown.child_token(),
            reason: Mutex::new(None),
        })
    }

    /// Asks the connection to close; the first reason given wins (a server shutdown counts as
    /// given when it fires first).
    pub fn close(&self, reason: CloseReason, message: impl Into<String>) {
        if self.cancel.is_cancelled() {
            return;
        }
        if let Ok(mut slot) = self.reason.lock() {
            slot.get_or_insert((reason, message.into()));
        }
        self.cancel.cancel();
    }

    pub async fn closed(&self) {
        self.cancel.cancelled().await;
    }

    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Why the connection is closing; a server shutdown when nobody said otherwise.
    pub fn reason(&self) -> (CloseReason, String) {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or((CloseReason::Shutdown, "the server is shutting down".into()))
    }
}

/// A connection's outbound queue plus its control: everything needed to deliver to it.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    pub control: Arc<Control>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The writing end's side of an `Outbox`: takes frames off the queue and gives back their
/// bytes to the bound.
#[derive(Debug)]
pub struct Frames {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// A queue of at most `max_frames` frames and `max_bytes` bytes.
    pub fn new(max_frames: usize, max_bytes: usize, control: Arc<Control>) -> (Self, Frames) {
        let (tx, rx) = mpsc::channel(max_frames);
        let queued = Arc::new(AtomicUsize::new(0));
        let outbox = Self {
            tx,
            control,
            queued: queued.clone(),
            max_bytes,
        };
        (outbox, Frames { rx, queued })
    }

    /// Queues a frame without waiting; a queue past either bound disconnects the session.
    pub fn deliver(&self, frame: Bytes) {
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.control.close(
                CloseReason::TooSlow,
                format!(
                    "more than {} waiting for this connection; reconnect to catch up",
                    crate::net::protocol::size_in_words(self.max_bytes)
                ),
            );
            return;
        }
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                self.control.close(
                    CloseReason::TooSlow,
                    "too many frames waiting for this connection; reconnect to catch up",
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
            }
        }
    }

    /// Encodes and queues one frame.
    pub fn deliver_frame(&self, frame: &ServerFrame) {
        match codec::encode(frame) {
            Ok(bytes) => self.deliver(bytes.into()),
            Err(e) => tracing::error!(%e, kind = frame.kind(), "cannot encode frame"),
        }
    }
}

impl Frames {
    pub async fn recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    pub fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// Refuses further frames; those already queued can still be taken.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, Frames) {
        Outbox::new(
            max_frames,
            max_bytes,
            Control::new(&CancellationToken::new()),
        )
    }

    #[test]
    fn a_reader_that_never_reads_is_closed_at_the_byte_bound_not_the_frame_bound() {
        // The attack: ask for big answers and never read them.
        let (outbox, frames) = outbox(8192, MAX_QUEUED_BYTES);
        let answer = Bytes::from(vec![0u8; 250 * 1024]);
        let mut delivered = 0;
        while !outbox.control.is_closed() {
            outbox.deliver(answer.clone());
            delivered += 1;
            assert!(delivered < 100, "never closed");
        }
        assert_eq!(outbox.control.reason().0, CloseReason::TooSlow);
        assert!(frames.queued_bytes() <= MAX_QUEUED_BYTES);
        assert_eq!(delivered, MAX_QUEUED_BYTES / answer.len() + 1);
    }

    #[test]
    fn taking_frames_frees_their_bytes() {
        let (outbox, mut frames) = outbox(16, 100);
        for _ in 0..3 {
            outbox.deliver(Bytes::from(vec![0u8; 40]));
            outbox.deliver(Bytes::from(vec![0u8; 40]));
            assert_eq!(frames.queued_bytes(), 80);
            assert!(frames.try_recv().is_some());
            assert!(frames.try_recv().is_some());
            assert_eq!(frames.queued_bytes(), 0);
        }
        assert!(!outbox.control.is_closed());
    }

    #[test]
    fn the_frame_bound_still_holds_for_small_frames() {
        let (outbox, _frames) = outbox(2, MAX_QUEUED_BYTES);
        for _ in 0..3 {
            outbox.deliver(Bytes::from_static(b"x"));
        }
        assert_eq!(outbox.control.reason().0, CloseReason::TooSlow);
    }
}
