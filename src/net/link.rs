//! The reconnecting client link, shared by the TUI, the agent and every one-shot verb.
//!
//! One task owns the connection. Callers hold a cheap, cloneable [`LinkHandle`] whose methods
//! return the server's answer, and read [`LinkEvent`]s from one stream. The task:
//! - connects through an injectable `connect` step (WebSocket in production, channel pairs in
//!   tests), performs the handshake, and backs off with jitter between attempts;
//! - re-joins every joined channel after a reconnect and fetches the gap from history, so each
//!   channel's messages reach the caller in sequence order, with no gap and no duplicate;
//! - keeps every unanswered request and resends it after a reconnect (sends carry a client id,
//!   so a resend never stores a second copy); requests made while offline wait in that queue.
//!
//! It knows nothing of terminals, MCP or databases.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::identity::{Identity, random_bytes};
use super::names::{Name, SessionPath};
use super::protocol::{
    Audience, Change, ChannelAct, ChannelInfo, ChatMessage, ClientFrame, CloseReason, ErrorCode,
    MAX_HISTORY_PAGE, MachineInfo, ModerationEvent, OnConflict, PROTOCOL_VERSION, PresenceEvent,
    ProtocolError, RelayBody, SearchHit, SearchRequest, ServerFrame, SessionInfo, SessionKind,
    Visibility, WhisperMessage,
};
pub use super::transport::{CONN_QUEUE, Conn, ConnectError};

mod requests;
mod task;

pub use task::{Backoff, spawn_with};

/// How long the server may take to answer each handshake step.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most requests held while offline. Past this, callers wait (the command channel is bounded),
/// so a long outage costs bounded memory.
const MAX_QUEUED_REQUESTS: usize = 4096;

/// Live messages held per channel while its gap is fetched from history. Past this, buffered
/// messages are dropped: the history fetch will return them anyway.
const MAX_GAP_BUFFER: usize = 10_000;

/// Events waiting for the caller. When the caller falls this far behind the link stops reading
/// the socket; the server then drops the session as too slow and the link catches up later.
const EVENT_QUEUE: usize = 1024;

const COMMAND_QUEUE: usize = 256;

/// Longest a send waits out the server's rate limit before its caller hears of it.
const MAX_RATE_WAIT: Duration = Duration::from_secs(30);

/// How the link claims its identity on connect.
#[derive(Debug, Clone)]
pub enum Login {
    /// The key is enrolled already.
    Key,
    /// Claim a user name and enroll this key as `machine` on first connect.
    Register { username: Name, machine: Name },
    /// Enroll this key with a one-time code made on one of the user's machines.
    Enroll { code: String },
}

/// Everything the link needs to know about who it is and where it goes.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub url: String,
    pub identity: Arc<Identity>,
    pub handle: Name,
    /// A defaulted handle takes a suffix when taken; a chosen one fails instead.
    pub handle_defaulted: bool,
    pub kind: SessionKind,
    pub login: Login,
    /// Reconnect forever (TUI, agent, tail) or give up at the first failure (one-shot verbs).
    pub persistent: bool,
    /// A PEM file of CA certificates to trust for `wss://` instead of the public roots (a
    /// server with a private CA; `CONCLAVE_CA_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
    /// Which server ids this link may sign for.
    pub pin: ServerPin,
}

/// The server ids a link checks before signing a challenge (see `net::servers`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerPin {
    /// The id registered for this address, if it was.
    pub expected: Option<String>,
    /// The ids of the person's other servers, with their aliases: never signed for here.
    pub others: Vec<(String, String)>,
    /// The links a client keeps open side by side, and the alias this one goes by: a link
    /// that reaches a server another one has reached already is not opened.
    pub registry: Option<(LinkRegistry, String)>,
}

/// Which server (by id) each of a client's links reached, under which alias: one link per
/// server, since two would only push each other's session around. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LinkRegistry(Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>);

impl PartialEq for LinkRegistry {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LinkRegistry {}

impl LinkRegistry {
    /// Records that `alias` reaches server `server_id`, unless another alias does already:
    /// then that alias.
    pub fn claim(&self, server_id: &str, alias: &str) -> Result<(), String> {
        let mut reached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match reached.get(server_id) {
            Some(first) if first != alias => Err(first.clone()),
            _ => {
                reached.insert(server_id.to_owned(), alias.to_owned());
                Ok(())
            }
        }
    }
}

/// What the caller hears from the link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Connected and authenticated as `path`.
    Connected {
        path: SessionPath,
        server_id: String,
        admin: bool,
    },
    /// The connection dropped; the next attempt is in `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// A channel message, in sequence order per channel, each exactly once.
    Message(ChatMessage),
    Whisper(WhisperMessage),
    Presence(PresenceEvent),
    /// A relay from another session of the same user (see `RelayBody`).
    Relay {
        from: SessionPath,
        from_kind: SessionKind,
        body: RelayBody,
    },
    /// A moderation act in a joined channel (see `ModerationEvent::removes`: the link has
    /// already stopped tracking a channel the act removed this session from).
    Moderation(ModerationEvent),
    /// A direct conversation of this user was just opened: join it to receive it.
    Opened(ChannelInfo),
    /// A channel could not be re-joined after a reconnect (it was deleted or access revoked).
    ChannelLost {
        channel: Name,
        reason: String,
    },
    /// The link gave up for good; every later request fails with this reason.
    Closed {
        reason: String,
    },
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The server refused it.
    #[error("{0}")]
    Server(ProtocolError),
    /// The link is closed (or, for a one-shot link, the connection was lost).
    #[error("{0}")]
    Closed(String),
    /// The server answered with a frame that does not fit the request.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(&'static str),
}

impl LinkError {
    /// The server's error code, if it was the server that refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Where a newly joined channel starts delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Only messages sent from now on.
    Live,
    /// Every message after this sequence number.
    After(u64),
    /// The last `n` messages, then live.
    Last(u64),
}

/// Answer to a successful send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    pub seq: u64,
    pub ts: i64,
    pub duplicate: bool,
}

/// Answer to a successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReceipt {
    pub channel: ChannelInfo,
    pub read_seq: u64,
    /// The join made this user a member.
    pub new_member: bool,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<ChatMessage>,
    /// More messages match than this page holds.
    pub more: bool,
}

/// Answer to `invite_machine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInvite {
    pub code: String,
    /// When the code stops working, in ms since the epoch.
    pub expires: i64,
}

/// A page of the channel list.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPage {
    pub channels: Vec<ChannelInfo>,
    /// More follow the last one.
    pub more: bool,
}

/// Answer to `who`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoReport {
    pub sessions: Vec<SessionInfo>,
    pub members: Vec<Name>,
    /// The server named only the first `MAX_WHO_ENTRIES` of a list.
    pub truncated: bool,
}

type Reply = oneshot::Sender<Result<ServerFrame, LinkError>>;

enum Command {
    Request {
        frame: ClientFrame,
        reply: Reply,
    },
    Join {
        channel: Name,
        resume: Resume,
        /// An invite token, for a first join of a private channel.
        invite: Option<String>,
        reply: Reply,
    },
    Leave {
        channel: Name,
        reply: Reply,
    },
}

/// The caller's end of a link. Cloning is cheap; the link runs until every clone is dropped.
#[derive(Clone)]
pub struct LinkHandle {
    commands: mpsc::Sender<Command>,
    closed: Arc<Mutex<Option<String>>>,
}

impl LinkHandle {
    fn closed_error(&self) -> LinkError {
        let reason = self
            .closed
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "the link is closed".to_owned());
        LinkError::Closed(reason)
    }

    async fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<ServerFrame, LinkError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(command(reply)).await.is_err() {
            return Err(self.closed_error());
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.closed_error()),
        }
    }

    /// `request`, waiting out the server's rate limit: a refusal that says when to retry is
    /// retried then, for up to `MAX_RATE_WAIT` in all, before the caller hears of it. A
    /// request refused as rate limited was not carried out, so repeating it is safe.
    async fn request_paced(&self, frame: ClientFrame) -> Result<ServerFrame, LinkError> {
        let deadline = Instant::now() + MAX_RATE_WAIT;
        loop {
            match self.request(frame.clone()).await {
                Err(LinkError::Server(ProtocolError {
                    code: ErrorCode::RateLimited,
                    retry_after_ms: Some(ms),
                    ..
                })) if Instant::now() + Duration::from_millis(ms) <= deadline => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                answer => return answer,
            }
        }
    }

    /// Sends any request frame (its id is assigned by the link) and returns the answer; an
    /// `Error` answer becomes `LinkError::Server`.
    pub async fn request(&self, frame: ClientFrame) -> Result<ServerFrame, LinkError> {
        self.call(|reply| Command::Request { frame, reply }).await
    }

    /// Posts a message; resolves once the server has stored it.
    pub async fn send(&self, channel: &Name, text: &str) -> Result<SendReceipt, LinkError> {
        self.send_as(channel, text, None, &new_client_id()).await
    }

    /// Posts a message answering message `reply_to` of the channel (if any).
    pub async fn reply(
        &self,
        channel: &Name,
        text: &str,
        reply_to: Option<u64>,
    ) -> Result<SendReceipt, LinkError> {
        self.send_as(channel, text, reply_to, &new_client_id())
            .await
    }

    /// Posts a message under a client id of the caller's (see `new_client_id`): sending it
    /// again with the same id, on this link or another, never stores it twice.
    pub async fn send_as(
        &self,
        channel: &Name,
        text: &str,
        reply_to: Option<u64>,
        client_id: &str,
    ) -> Result<SendReceipt, LinkError> {
        self.post(channel, text, (reply_to, None), client_id).await
    }

    /// Edits, deletes or reacts to an earlier message of the channel (see `Change`); `text`
    /// is the new text, the reaction, or empty for a delete. Resolves once stored.
    pub async fn change(
        &self,
        channel: &Name,
        change: Change,
        text: &str,
    ) -> Result<SendReceipt, LinkError> {
        self.change_as(channel, change, text, &new_client_id())
            .await
    }

    /// `change` under a client id of the caller's, so a retry never applies it twice.
    pub async fn change_as(
        &self,
        channel: &Name,
        change: Change,
        text: &str,
        client_id: &str,
    ) -> Result<SendReceipt, LinkError> {
        self.post(channel, text, (None, Some(change)), client_id)
            .await
    }

    /// Sends a `Send` frame (a message answering `reply_to`, or a `change`), paced, and reads
    /// its receipt.
    async fn post(
        &self,
        channel: &Name,
        text: &str,
        (reply_to, change): (Option<u64>, Option<Change>),
        client_id: &str,
    ) -> Result<SendReceipt, LinkError> {
        let frame = ClientFrame::Send {
            id: 0,
            channel: channel.clone(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
            reply_to,
            change,
        };
        match self.request_paced(frame).await? {
            ServerFrame::Sent {
                seq, ts, duplicate, ..
            } => Ok(SendReceipt { seq, ts, duplicate }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn whisper(&self, to: &SessionPath, text: &str) -> Result<(), LinkError> {
        let frame = ClientFrame::Whisper {
            id: 0,
            to: to.clone(),
            text: text.to_owned(),
        };
        match self.request_paced(frame).await? {
            ServerFrame::Done { .. } => Ok(()),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Joins a channel and starts delivering its messages as `LinkEvent::Message`, from
    /// `resume` on. The link re-joins it after every reconnect.
    pub async fn join(&self, channel: &Name, resume: Resume) -> Result<JoinReceipt, LinkError> {
        self.join_with(channel, resume, None).await
    }

    /// `join`, with an invite token that makes the user a member of a private channel.
    pub async fn join_with(
        &self,
        channel: &Name,
        resume: Resume,
        invite: Option<String>,
    ) -> Result<JoinReceipt, LinkError> {
        let channel = channel.clone();
        match self
            .call(|reply| Command::Join {
                channel,
                resume,
                invite,
                reply,
            })
            .await?
        {
            ServerFrame::Joined {
                channel,
                read_seq,
                new_member,
                ..
            } => Ok(JoinReceipt {
                channel,
                read_seq,
                new_member,
            }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Leaves a channel: its messages stop at once and it is not re-joined on reconnect.
    /// Returns whether the user's membership ended (false: another of the user's sessions
    /// still receives the channel, so the user stays a member).
    pub async fn leave(&self, channel: &Name) -> Result<bool, LinkError> {
        let channel = channel.clone();
        match self.call(|reply| Command::Leave { channel, reply }).await? {
            ServerFrame::Left {
                membership_ended, ..
            } => Ok(membership_ended),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Passes `body` to this user's own sessions (see `ClientFrame::Relay`).
    pub async fn relay(
        &self,
        to: Option<SessionPath>,
        audience: Audience,
        body: RelayBody,
    ) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::Relay {
            id: 0,
            to,
            audience: Some(audience),
            body,
        })
        .await
    }

    pub async fn create_channel(
        &self,
        channel: &Name,
        visibility: Visibility,
    ) -> Result<ChannelInfo, LinkError> {
        let frame = ClientFrame::CreateChannel {
            id: 0,
            channel: channel.clone(),
            visibility,
        };
        match self.request(frame).await? {
            ServerFrame::ChannelCreated { channel, .. } => Ok(channel),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Makes `user` a member of `channel` (creator or server admin only).
    pub async fn add_member(&self, channel: &Name, user: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::AddMember {
            id: 0,
            channel: channel.clone(),
            user: user.clone(),
        })
        .await
    }

    /// Ends `user`'s membership of `channel`; their sessions stop receiving it at once.
    pub async fn remove_member(&self, channel: &Name, user: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::RemoveMember {
            id: 0,
            channel: channel.clone(),
            user: user.clone(),
        })
        .await
    }

    async fn expect_done(&self, frame: ClientFrame) -> Result<(), LinkError> {
        match self.request(frame).await? {
            ServerFrame::Done { .. } => Ok(()),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }
}

/// A random idempotency id for one send.
pub fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness a time-based id still keeps concurrent senders apart in practice.
    if random_bytes(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = now.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
