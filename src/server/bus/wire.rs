//! What instances say to each other over NATS, encoded with MessagePack. Messages and room
//! events carry the frames their subscribers receive, encoded once by the instance that made
//! them and forwarded unchanged.

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::nats::MAX_PAYLOAD;
use crate::net::names::SessionPath;
use crate::net::protocol::{Audience, OnConflict, PresenceEvent, SessionInfo};
use crate::server::hub::{Outgoing, RoomEffect, UserEffect};
use crate::server::store::{ChannelId, UserId};

#[derive(Debug, Serialize, Deserialize)]
pub enum Wire {
    /// Messages stored in one channel, in seq order.
    Messages {
        channel: ChannelId,
        frames: Vec<(u64, ByteBuf)>,
    },
    Room {
        channel: ChannelId,
        frame: ByteBuf,
        effect: RoomEffect,
    },
    /// A session of instance `from` started or stopped receiving a room.
    Presence {
        from: String,
        channel: ChannelId,
        event: PresenceEvent,
        frame: ByteBuf,
    },
    User(UserEffect),
    /// An instance is alive.
    Beat {
        instance: String,
    },
    /// A question for every other instance, answered to `from`'s reply subject.
    Ask {
        from: String,
        id: u64,
        question: Question,
    },
    Answer {
        id: u64,
        answer: Answer,
    },
}

/// What one instance asks the others about their sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Question {
    /// Their sessions, or those receiving one channel.
    Who { channel: Option<ChannelId> },
    /// Deliver this whisper if the session is there.
    Whisper { to: SessionPath, frame: ByteBuf },
    /// Deliver this relay to `user`'s sessions there (see `Hub::relay`).
    Relay {
        user: UserId,
        sender: SessionPath,
        to: Option<SessionPath>,
        audience: Audience,
        frame: ByteBuf,
    },
    /// How many sessions of each of `users` are live there.
    Online { users: Vec<UserId> },
    /// A session is signing in as `base`: which of its user's and machine's paths are live
    /// there (giving `base` up when the claim may take it).
    Claim {
        base: SessionPath,
        instance: Option<String>,
        policy: OnConflict,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    Sessions(Vec<SessionInfo>),
    Delivered(u32),
    Paths(HashSet<SessionPath>),
    Counts(Vec<(UserId, u32)>),
}

impl Wire {
    pub fn encode(&self) -> Option<Bytes> {
        match rmp_serde::to_vec(self) {
            Ok(bytes) => Some(Bytes::from(bytes)),
            Err(e) => {
                tracing::error!(%e, "cannot encode a bus message");
                None
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match rmp_serde::from_slice(bytes) {
            Ok(wire) => Some(wire),
            Err(e) => {
                tracing::warn!(%e, "an undecodable bus message was ignored");
                None
            }
        }
    }

    /// The bus messages for one event of `instance`'s hub: a burst of messages is cut into
    /// pieces that each fit in a NATS message.
    pub fn from_outgoing(event: Outgoing, instance: &str) -> Vec<(Option<ChannelId>, Self)> {
        match event {
            Outgoing::Messages { channel, frames } => {
                let mut pieces = Vec::new();
                let (mut piece, mut size) = (Vec::new(), 0);
                for (seq, bytes) in frames {
                    if !piece.is_empty() && size + bytes.len() > MAX_PAYLOAD / 2 {
                        pieces.push(std::mem::take(&mut piece));
                        size = 0;
                    }
                    size += bytes.len();
                    piece.push((seq, ByteBuf::from(bytes.to_vec())));
                }
                pieces.push(piece);
                pieces
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .map(|frames| (Some(channel), Self::Messages { channel, frames }))
                    .collect()
            }
            Outgoing::Room {
                channel,
                frame,
                effect,
            } => vec![(
                Some(channel),
                Self::Room {
                    channel,
                    frame: ByteBuf::from(frame.to_vec()),
                    effect,
                },
            )],
            Outgoing::Presence {
                channel,
                event,
                frame,
            } => vec![(
                Some(channel),
                Self::Presence {
                    from: instance.to_owned(),
                    channel,
                    event,
                    frame: ByteBuf::from(frame.to_vec()),
                },
            )],
            Outgoing::User(effect) => vec![(None, Self::User(effect))],
        }
    }
}
