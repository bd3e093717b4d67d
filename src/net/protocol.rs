//! The wire protocol: every frame either side may send, the typed errors, the protocol version
//! and the size limits. `docs/PROTOCOL.md` describes the same frames for other implementers;
//! keep the two in step.
//!
//! Frames are MessagePack maps with named fields and a `type` key naming the variant (see
//! `codec.rs`, the only place that calls rmp-serde). Adding an optional field (with
//! `#[serde(default)]`) or a new variant never breaks an older peer; renaming does.

use serde::{Deserialize, Serialize};

use super::names::{Name, SessionPath};

/// Sent in `Hello`; a server refuses any other with `VersionMismatch`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest encoded frame a peer accepts. Checked on the raw bytes, before decoding allocates.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest WebSocket message the transport reads at all. Between `MAX_FRAME_BYTES` and this the
/// sender gets `TooLarge` and keeps its connection; beyond it the connection is closed, since
/// reading on would mean buffering whatever the peer cares to send.
pub const MAX_WIRE_BYTES: usize = 1024 * 1024;

/// Largest message or whisper body, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Largest client-chosen idempotency id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Most messages one `History` answer carries.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Length of the challenge nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// What kind of participant a session is. Presence shows it; only `Human` sessions may answer
/// an agent's permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Human,
    Agent,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Agent => "agent",
        }
    }
}

/// Who may see and join a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed for everyone; anyone may join.
    Public,
    /// Not listed; anyone who knows the exact name may join.
    Unlisted,
    /// Not listed; only members may join, read or post.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }
}

/// What the server does when the requested session handle is already live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Take the first free `handle-N` (for defaulted handles).
    Suffix,
    /// Drop the live session and take its place (a client reconnecting to its own path).
    Replace,
    /// Fail with `Conflict` (a handle the person chose explicitly).
    Refuse,
}

/// The typed part of an error; the frame also carries a human-readable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Forbidden,
    Invalid,
    Conflict,
    RateLimited,
    TooLarge,
    VersionMismatch,
    Internal,
}

/// An error as it travels in a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl From<super::names::NameError> for ProtocolError {
    fn from(e: super::names::NameError) -> Self {
        Self::invalid(e.to_string())
    }
}

/// Checks a message body against `MAX_TEXT_BYTES` and refuses empty ones.
pub fn check_text(text: &str) -> Result<(), ProtocolError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ProtocolError::too_large(format!(
            "message is {} bytes; the limit is {MAX_TEXT_BYTES}",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Err(ProtocolError::invalid("message is empty"));
    }
    Ok(())
}

/// Frames a client sends. Every variant after the handshake carries a request `id` that the
/// answer (or the error) echoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame: protocol version and the session this connection wants to be.
    Hello {
        version: u32,
        handle: Name,
        kind: SessionKind,
        on_conflict: OnConflict,
    },
    /// Answer to `Challenge` by an enrolled key.
    Auth {
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Answer to `Challenge` that also claims a free user name and enrolls this key under it.
    Register {
        username: Name,
        machine: Name,
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Create a channel; the creator becomes its first member and administrator.
    CreateChannel {
        id: u64,
        channel: Name,
        visibility: Visibility,
    },
    /// List the channels this user may see.
    ListChannels { id: u64 },
    /// Become a member (if not yet) and receive the channel's messages live from now on.
    Join { id: u64, channel: Name },
    /// Stop receiving the channel; the membership ends when no session of the user remains.
    Leave { id: u64, channel: Name },
    /// Post a message. `client_id` makes the send idempotent: a resend with the same id is
    /// acknowledged again without a second copy.
    Send {
        id: u64,
        channel: Name,
        client_id: String,
        text: String,
    },
    /// A private message to exactly one live session.
    Whisper {
        id: u64,
        to: SessionPath,
        text: String,
    },
    /// A page of history: messages with `after < seq < before`, oldest first. With only
    /// `before` (or neither) the page is the newest that fits.
    History {
        id: u64,
        channel: Name,
        #[serde(default)]
        after: Option<u64>,
        #[serde(default)]
        before: Option<u64>,
        limit: u32,
    },
    /// Who is online on the server, or in one channel.
    Who {
        id: u64,
        #[serde(default)]
        channel: Option<Name>,
    },
    /// Advance this session handle's read position in a channel (never moves backwards).
    MarkRead { id: u64, channel: Name, seq: u64 },
    /// Enroll another machine's key under this user.
    AddMachine {
        id: u64,
        machine: Name,
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
    },
    /// List this user's machines.
    ListMachines { id: u64 },
    /// Remove a machine: its key stops working and its live sessions are dropped at once.
    RemoveMachine { id: u64, machine: Name },
}

impl ClientFrame {
    /// The variant's name, for logs (never bodies or keys).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Auth { .. } => "auth",
            Self::Register { .. } => "register",
            Self::CreateChannel { .. } => "create_channel",
            Self::ListChannels { .. } => "list_channels",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Send { .. } => "send",
            Self::Whisper { .. } => "whisper",
            Self::History { .. } => "history",
            Self::Who { .. } => "who",
            Self::MarkRead { .. } => "mark_read",
            Self::AddMachine { .. } => "add_machine",
            Self::ListMachines { .. } => "list_machines",
            Self::RemoveMachine { .. } => "remove_machine",
        }
    }

    /// The request id, for every frame after the handshake.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            Self::Hello { .. } | Self::Auth { .. } | Self::Register { .. } => None,
            Self::CreateChannel { id, .. }
            | Self::ListChannels { id }
            | Self::Join { id, .. }
            | Self::Leave { id, .. }
            | Self::Send { id, .. }
            | Self::Whisper { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::MarkRead { id, .. }
            | Self::AddMachine { id, .. }
            | Self::ListMachines { id }
            | Self::RemoveMachine { id, .. } => Some(*id),
        }
    }

    /// The same request under the id the link assigns (callers build frames before it is known).
    pub fn with_id(mut self, new_id: u64) -> Self {
        match &mut self {
            Self::Hello { .. } | Self::Auth { .. } | Self::Register { .. } => {}
            Self::CreateChannel { id, .. }
            | Self::ListChannels { id }
            | Self::Join { id, .. }
            | Self::Leave { id, .. }
            | Self::Send { id, .. }
            | Self::Whisper { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::MarkRead { id, .. }
            | Self::AddMachine { id, .. }
            | Self::ListMachines { id }
            | Self::RemoveMachine { id, .. } => *id = new_id,
        }
        self
    }
}

/// A channel as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub name: Name,
    pub visibility: Visibility,
    /// Whether the asking user is a member.
    pub member: bool,
    /// Sequence number of the newest message (0 when empty).
    pub last_seq: u64,
}

/// One channel message as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub channel: Name,
    /// Per-channel sequence number: 1, 2, 3, ... in the order the server stored them.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, stamped by the server.
    pub ts: i64,
    /// The sender's full path, stamped by the server.
    pub from: SessionPath,
    pub text: String,
}

/// A private message between two live sessions; never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhisperMessage {
    pub from: SessionPath,
    pub to: SessionPath,
    pub ts: i64,
    pub text: String,
}

/// A live session as presence reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub path: SessionPath,
    pub kind: SessionKind,
}

/// What happened to a session in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceChange {
    /// Became a member and started receiving.
    Joined,
    /// Gave up membership.
    Left,
    /// A member's session started receiving (after a connect or reconnect).
    Online,
    /// A receiving session disconnected.
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub channel: Name,
    pub session: SessionInfo,
    pub change: PresenceChange,
}

/// An enrolled machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub name: Name,
    /// The key as `conclave key` prints it.
    pub public_key: String,
    /// Milliseconds since the Unix epoch.
    pub added: i64,
}

/// Why the server is about to close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The server is shutting down; reconnect later.
    Shutdown,
    /// Another connection took this session path.
    Replaced,
    /// This machine was removed; its key no longer works.
    Revoked,
    /// The session did not read its frames fast enough; reconnect and catch up.
    TooSlow,
    /// The peer broke the protocol.
    Protocol,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `Hello`: sign this to prove the key.
    Challenge {
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        server_id: String,
    },
    /// The handshake succeeded; this connection is now `path`.
    Welcome {
        path: SessionPath,
        server_id: String,
        version: u32,
        /// Whether the user is a server administrator.
        admin: bool,
    },
    /// A request failed (`id` set) or the connection broke the protocol (`id` absent).
    Error {
        #[serde(default)]
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    /// A request that has nothing else to say succeeded.
    Done {
        id: u64,
    },
    ChannelCreated {
        id: u64,
        channel: ChannelInfo,
    },
    Channels {
        id: u64,
        channels: Vec<ChannelInfo>,
    },
    /// Answer to `Join`. Live messages of this channel follow it on this connection.
    Joined {
        id: u64,
        channel: ChannelInfo,
        /// This session handle's read position in the channel (0 when never read).
        read_seq: u64,
    },
    /// A message was stored under `seq`. `duplicate` means an earlier send with the same
    /// client id had already stored it.
    Sent {
        id: u64,
        channel: Name,
        seq: u64,
        ts: i64,
        duplicate: bool,
    },
    History {
        id: u64,
        channel: Name,
        messages: Vec<ChatMessage>,
    },
    Who {
        id: u64,
        #[serde(default)]
        channel: Option<Name>,
        sessions: Vec<SessionInfo>,
        /// With a channel: every member user, online or not.
        #[serde(default)]
        members: Vec<Name>,
    },
    Machines {
        id: u64,
        machines: Vec<MachineInfo>,
    },
    /// A channel message, live.
    Message(ChatMessage),
    /// A whisper addressed to this session.
    Whisper(WhisperMessage),
    /// Someone joined, left, came online or went offline in a channel this session receives.
    Presence(PresenceEvent),
    /// The server is about to close this connection, and why.
    Closing {
        reason: CloseReason,
        message: String,
    },
}

impl ServerFrame {
    /// The variant's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Challenge { .. } => "challenge",
            Self::Welcome { .. } => "welcome",
            Self::Error { .. } => "error",
            Self::Done { .. } => "done",
            Self::ChannelCreated { .. } => "channel_created",
            Self::Channels { .. } => "channels",
            Self::Joined { .. } => "joined",
            Self::Sent { .. } => "sent",
            Self::History { .. } => "history",
            Self::Who { .. } => "who",
            Self::Machines { .. } => "machines",
            Self::Message(_) => "message",
            Self::Whisper(_) => "whisper",
            Self::Presence(_) => "presence",
            Self::Closing { .. } => "closing",
        }
    }

    /// The id of the request this frame answers, if it answers one.
    pub fn reply_to(&self) -> Option<u64> {
        match self {
            Self::Error { id, .. } => *id,
            Self::Done { id }
            | Self::ChannelCreated { id, .. }
            | Self::Channels { id, .. }
            | Self::Joined { id, .. }
            | Self::Sent { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::Machines { id, .. } => Some(*id),
            Self::Challenge { .. }
            | Self::Welcome { .. }
            | Self::Message(_)
            | Self::Whisper(_)
            | Self::Presence(_)
            | Self::Closing { .. } => None,
        }
    }

    pub fn error(id: Option<u64>, e: ProtocolError) -> Self {
        Self::Error {
            id,
            code: e.code,
            message: e.message,
        }
    }
}
