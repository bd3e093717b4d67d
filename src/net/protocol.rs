//! The wire protocol: every frame either side may send, the typed errors, the protocol version
//! and the size limits. `docs/PROTOCOL.md` describes the same frames for other implementers;
//! keep the two in step.
//!
//! Frames are MessagePack maps with named fields and a `type` key naming the variant (see
//! `codec.rs`, the only place that calls rmp-serde). Adding an optional field (with
//! `#[serde(default)]`) or a new variant never breaks an older peer; renaming does.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};

use super::names::{Name, SessionPath};

mod changes;
mod frames;
mod moderation;
mod search;

pub use changes::*;
pub use frames::{ClientFrame, ServerFrame};
pub use moderation::*;
pub use search::*;

/// Sent in `Hello`; a server refuses any other with `VersionMismatch`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest encoded frame the server accepts from a client. Checked on the raw bytes, before
/// decoding allocates. (Server frames may be larger, up to `MAX_WIRE_BYTES`: a history page.)
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Largest WebSocket message the transport reads at all. Between `MAX_FRAME_BYTES` and this the
/// sender gets `TooLarge` and keeps its connection; beyond it the connection is closed, since
/// reading on would mean buffering whatever the peer cares to send.
pub const MAX_WIRE_BYTES: usize = 1024 * 1024;

/// How often the server pings each connection.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// Heartbeats a peer may miss before it counts as gone.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Silence after which either side drops the connection: the server reaps a client, a client
/// gives up on the server (and reconnects).
pub const SILENCE_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(HEARTBEAT.as_secs() * MISSED_HEARTBEATS as u64);

/// Most sessions, and most members, named in one `Who` answer.
pub const MAX_WHO_ENTRIES: usize = 2000;

/// Most channels in one `Channels` answer, so no list can outgrow a frame.
pub const MAX_CHANNEL_PAGE: u32 = 500;

/// Largest message or whisper body, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Largest client-chosen idempotency id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Most messages one `History` answer carries.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Most message text one `History` answer carries, so a page of long messages still fits in
/// a frame the client reads.
pub const MAX_HISTORY_PAGE_BYTES: usize = 256 * 1024;

/// Most hits one search answers with.
pub const MAX_SEARCH_PAGE: u32 = 100;

/// Most words and phrases one search holds.
pub const MAX_SEARCH_TERMS: usize = 16;

/// Length of the challenge nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// Reads an enum back from the name its serde derive gives a variant (`converse`, `private`).
/// The `rename_all` of such an enum is then its one spelling: on the wire, on screen (its
/// `Display` writes the same name through `Serialize`), in files and in what people type.
pub fn from_name<T: DeserializeOwned>(name: &str) -> Option<T> {
    T::deserialize(StrDeserializer::<ValueError>::new(name)).ok()
}

/// What kind of participant a session is. Presence shows it; only `Human` sessions may answer
/// an agent's permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Human,
    Agent,
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
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

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// What the server does when the requested session handle is already live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Take the first free `handle-N` (for defaulted handles).
    Suffix,
    /// Drop the live session and take its place, whoever it is (reconnects use `instance`).
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
    /// An agent may not post in the channel now: it is waiting for a person (the agent turn
    /// budget is spent, or reply mode `mention` and nobody mentioned the agent).
    FloorClosed,
    /// The server's database cannot be reached: nothing was stored; retry.
    Unavailable,
}

/// An error as it travels in a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// With `rate_limited`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    /// `rate_limited`, with when to try again.
    pub fn retry_after(wait: std::time::Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)),
            ..Self::rate_limited(message)
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
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RateLimited, message)
    }
    pub fn floor_closed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FloorClosed, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    /// The one wording of every size limit: `message is 20 KiB; the limit is 16 KiB`.
    pub fn over_limit(what: &str, size: usize, limit: usize) -> Self {
        Self::too_large(format!(
            "{what} is {}; the limit is {}",
            size_in_words(size),
            size_in_words(limit)
        ))
    }
}

/// A size as people say it: `300 bytes`, `16 KiB`, `20.5 KiB`, `1 MiB`.
pub fn size_in_words(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    let (unit, name) = match bytes {
        b if b >= MIB => (MIB, "MiB"),
        b if b >= KIB => (KIB, "KiB"),
        1 => return "1 byte".into(),
        b => return format!("{b} bytes"),
    };
    let tenths = (bytes * 10 + unit / 2) / unit;
    if tenths % 10 == 0 {
        format!("{} {name}", tenths / 10)
    } else {
        format!("{}.{} {name}", tenths / 10, tenths % 10)
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
        return Err(ProtocolError::over_limit(
            "message",
            text.len(),
            MAX_TEXT_BYTES,
        ));
    }
    if text.trim().is_empty() {
        return Err(ProtocolError::invalid("message is empty"));
    }
    // PostgreSQL keeps no NUL in text: one would fail the commit of everyone's messages.
    if text.contains('\0') {
        return Err(ProtocolError::invalid(
            "a message may not hold a NUL character",
        ));
    }
    Ok(())
}

/// How much an agent may do in a channel. Decided locally by the agent's owner, never by the
/// server; the server only carries changes between a person's sessions and their agents.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Messages are dropped, not delivered to the model.
    Mute,
    /// Messages are delivered; replies are refused.
    Notify,
    /// Messages are delivered and the agent may reply.
    Converse,
    /// The agent may reply and act on what it reads.
    Act,
}

impl fmt::Display for Autonomy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// One channel's autonomy level, as an agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAutonomy {
    pub channel: Name,
    pub level: Autonomy,
}

/// Which of the sender's own sessions a relay without `to` goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Humans,
    Agents,
}

/// What a person's sessions and their agents tell each other through the server. The server
/// routes these only between sessions of the same user, and accepts the ones that steer an
/// agent (verdicts, autonomy changes, queries) only from `human` sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelayBody {
    /// An agent asks its owner to approve a tool call.
    PermissionRequest {
        request_id: String,
        tool_name: String,
        description: String,
        input_preview: String,
        /// Milliseconds from now until the agent stops taking a verdict for it (Claude Code's
        /// own dialog may have settled it by then). Relative, so clocks need not agree; 0 from
        /// agents that predate it.
        #[serde(default)]
        expires_in_ms: u64,
    },
    /// A person's answer to a permission request (human sessions only).
    PermissionVerdict { request_id: String, allow: bool },
    /// An agent tells its owner's sessions which verdict it applied, and whose.
    PermissionAnswered {
        request_id: String,
        allow: bool,
        by: SessionPath,
    },
    /// A person changes an agent's autonomy in one channel (human sessions only).
    SetAutonomy { channel: Name, level: Autonomy },
    /// A person asks their agents to report their autonomy (human sessions only).
    AutonomyQuery,
    /// An agent's autonomy levels: per channel, and the level of every other channel.
    AutonomyReport {
        levels: Vec<ChannelAutonomy>,
        default: Autonomy,
        /// Autonomy does not apply to this agent (`--format jsonl`: a program acting as its
        /// user): the levels mean nothing and a change is not taken. Absent from older agents.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_applicable: bool,
    },
}

impl RelayBody {
    /// Whether only a person may send it.
    pub fn steers_an_agent(&self) -> bool {
        matches!(
            self,
            Self::PermissionVerdict { .. } | Self::SetAutonomy { .. } | Self::AutonomyQuery
        )
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
    /// How many users are members: counted in channel lists, 0 in other answers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub members: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    /// Read-only for everyone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// The sending session's kind, stamped by the server (absent on messages stored before
    /// it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_kind: Option<SessionKind>,
    pub text: String,
    /// The seq of the message (in the same channel) this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Set on an event: the earlier message it changes, and how (see `Change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// When the text was last edited (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<i64>,
    /// Deleted: the text is gone and the seq stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The reactions on the message as history reads them (live messages carry none: the
    /// reaction events follow them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

#[cfg(test)]
impl ChatMessage {
    /// A plain message, with no change, edit, delete or reaction (for tests).
    pub fn posted(channel: Name, seq: u64, ts: i64, from: SessionPath, text: String) -> Self {
        Self {
            channel,
            seq,
            ts,
            from,
            from_kind: None,
            text,
            reply_to: None,
            change: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }
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
    /// A server admin banned the user.
    Banned,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_the_way_people_say_them() {
        assert_eq!(size_in_words(1), "1 byte");
        assert_eq!(size_in_words(300), "300 bytes");
        assert_eq!(size_in_words(MAX_TEXT_BYTES), "16 KiB");
        assert_eq!(size_in_words(20_992), "20.5 KiB");
        assert_eq!(size_in_words(MAX_WIRE_BYTES), "1 MiB");
        assert_eq!(
            ProtocolError::over_limit("message", 20_992, MAX_TEXT_BYTES).message,
            "message is 20.5 KiB; the limit is 16 KiB"
        );
    }

    #[test]
    fn a_message_holds_no_nul_which_would_fail_a_whole_postgres_commit() {
        assert!(check_text("fine").is_ok());
        let refused = check_text("a\0b").err().map(|e| e.message);
        assert_eq!(
            refused.as_deref(),
            Some("a message may not hold a NUL character")
        );
    }

    #[test]
    fn enums_read_and_show_the_names_serde_gives_them() {
        let shown = [
            (SessionKind::Human.to_string(), "human"),
            (SessionKind::Agent.to_string(), "agent"),
            (Visibility::Unlisted.to_string(), "unlisted"),
            (Autonomy::Converse.to_string(), "converse"),
            (format!("{:<6}|", Autonomy::Act), "act   |"),
        ];
        for (got, want) in shown {
            assert_eq!(got, want);
        }
        for level in [
            Autonomy::Mute,
            Autonomy::Notify,
            Autonomy::Converse,
            Autonomy::Act,
        ] {
            assert_eq!(from_name::<Autonomy>(&level.to_string()), Some(level));
        }
        assert_eq!(
            from_name::<Visibility>("private"),
            Some(Visibility::Private)
        );
        assert_eq!(from_name::<Autonomy>("Act"), None);
        assert_eq!(from_name::<Autonomy>(""), None);
    }
}
