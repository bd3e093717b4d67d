//! What the hub tells the other instances: its sessions' presence changes, the messages this
//! instance stored, and acts and revocations that take effect everywhere. Queued for the bus
//! without waiting (the hub never awaits under its lock); when the queue is full an event is
//! dropped, which the bus repairs for messages (from the database) and tolerates for presence.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{RoomEffect, UserEffect};
use crate::net::protocol::PresenceEvent;
use crate::server::store::ChannelId;

/// Events that may wait for the bus.
pub const MAX_FORWARDED: usize = 16 * 1024;

/// One event for the other instances.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Messages this instance stored in one channel, in seq order, each as the encoded frame
    /// its subscribers received.
    Messages {
        channel: ChannelId,
        frames: Vec<(u64, Bytes)>,
    },
    /// An encoded frame for a room's subscribers (a presence change or an act) and what it
    /// does to the room.
    Room {
        channel: ChannelId,
        frame: Bytes,
        effect: RoomEffect,
    },
    /// A session here started or stopped receiving a room, and the encoded event.
    Presence {
        channel: ChannelId,
        event: PresenceEvent,
        frame: Bytes,
    },
    User(UserEffect),
}

/// The hub's end of the queue to the bus; goes nowhere on a server of one.
#[derive(Debug, Clone, Default)]
pub struct Forward(Option<mpsc::Sender<Outgoing>>);

impl Forward {
    /// A queue to the bus, and the bus's end of it.
    pub fn channel() -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(MAX_FORWARDED);
        (Self(Some(tx)), rx)
    }

    pub fn send(&self, event: Outgoing) {
        if let Some(tx) = &self.0
            && tx.try_send(event).is_err()
        {
            tracing::debug!("the bus is behind: an event for the other instances was dropped");
        }
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}
