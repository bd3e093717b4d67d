//! The frames themselves: one enum per direction, a doc line per variant, `kind()` for logs.
//! Variants are only ever appended, and added fields carry `#[serde(default)]`, so an older
//! peer keeps decoding what a newer one sends (see the golden tests in `codec.rs`).

use serde::{Deserialize, Serialize};

use super::{
    Audience, AuditEntry, Change, ChannelAct, ChannelDetails, ChannelInfo, ChatMessage,
    CloseReason, ErrorCode, InviteInfo, MachineInfo, ModerationEvent, OnConflict, PresenceEvent,
    ProtocolError, RelayBody, SearchHit, SessionInfo, SessionKind, UserInfo, Visibility,
    WhisperMessage,
};
use crate::net::names::{Name, SessionPath};

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
        /// A random id the client keeps while it runs. When the path is live already with the
        /// same id (a reconnect the server has not noticed the end of), the old session is
        /// replaced instead of applying `on_conflict`.
        #[serde(default)]
        instance: Option<String>,
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
    /// Create a channel; the creator becomes its first member.
    CreateChannel {
        id: u64,
        channel: Name,
        visibility: Visibility,
    },
    /// List the channels this user may see, by name, a page at a time: those after `after`,
    /// at most `limit` (capped at `MAX_CHANNEL_PAGE`).
    ListChannels {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Name>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Become a member (if not yet) and receive the channel's messages live from now on.
    /// `invite` is a token from `CreateInvite`: it makes the user a member of a private
    /// channel (and is needed for nothing else).
    Join {
        id: u64,
        channel: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
    },
    /// Stop receiving the channel; the membership ends when no session of the user remains.
    Leave {
        id: u64,
        channel: Name,
    },
    /// Post a message, or with `change` an event that edits, deletes or reacts to an earlier
    /// one (answered with `Sent` all the same: an event has a seq of its own). `client_id`
    /// makes the send idempotent: a resend with the same id is acknowledged again without a
    /// second copy.
    Send {
        id: u64,
        channel: Name,
        client_id: String,
        text: String,
        /// The seq of an earlier message of the channel this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Change>,
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
        /// Only message `thread` and the messages answering it (its `reply_to`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<u64>,
    },
    /// Who is online on the server, or in one channel.
    Who {
        id: u64,
        #[serde(default)]
        channel: Option<Name>,
    },
    /// Advance this session handle's read position in a channel (never moves backwards).
    MarkRead {
        id: u64,
        channel: Name,
        seq: u64,
    },
    /// Enroll another machine's key under this user. Refused: nothing proves the key belongs
    /// to the new machine. Kept so the variant indices stay put; see `InviteMachine`.
    AddMachine {
        id: u64,
        machine: Name,
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
    },
    /// List this user's machines.
    ListMachines {
        id: u64,
    },
    /// Remove a machine: its key stops working and its live sessions are dropped at once.
    RemoveMachine {
        id: u64,
        machine: Name,
    },
    /// Make `user` a member of a channel (how people get into private channels). Only the
    /// channel's creator or a server administrator may.
    AddMember {
        id: u64,
        channel: Name,
        user: Name,
    },
    /// End `user`'s membership; their live sessions stop receiving the channel at once. The
    /// creator or a server administrator may remove anyone; anyone may remove themselves.
    RemoveMember {
        id: u64,
        channel: Name,
        user: Name,
    },
    /// Pass `body` to one of this user's own live sessions (`to`), or else to all of them of
    /// one kind (`audience`, default `humans`), never to the sender itself.
    Relay {
        id: u64,
        #[serde(default)]
        to: Option<SessionPath>,
        #[serde(default)]
        audience: Option<Audience>,
        body: RelayBody,
    },
    /// Make a one-time code that lets a new machine enroll its own key under this user as
    /// `machine` (answered with `MachineInvite`).
    InviteMachine {
        id: u64,
        machine: Name,
    },
    /// Handshake, instead of `Auth`: enroll this key with a code from `InviteMachine`, proving
    /// possession of the key by signing the challenge like `Auth`.
    Enroll {
        code: String,
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Register `public_key` as this machine's human key: from then on `human` sessions of the
    /// machine must sign in with it. `signature` is by that key over
    /// `human_key::registration_message`. Replacing a human key takes a session signed in
    /// with the current one.
    SetHumanKey {
        id: u64,
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// A moderation act or setting change on a channel (people's sessions only); answered
    /// with `Done`, and told to the channel as a `Moderation` event.
    Moderate {
        id: u64,
        channel: Name,
        act: ChannelAct,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Make an invite token for a channel (moderators and owners): `uses` joins at most
    /// (default 1), valid for `ttl_ms` (default 7 days). Answered with `ChannelInvite`.
    CreateInvite {
        id: u64,
        channel: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uses: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// A channel in full: topic, roles, settings, the asker's standing. Answered with
    /// `ChannelDetails`.
    DescribeChannel {
        id: u64,
        channel: Name,
    },
    /// Ban a user from the server (admins only): their sessions close now, and sign-ins are
    /// refused until `for_ms` has passed (absent: until unbanned).
    BanUser {
        id: u64,
        user: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    UnbanUser {
        id: u64,
        user: Name,
    },
    /// The server's users by name, a page at a time (admins only). Answered with `Users`.
    ListUsers {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Name>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// The audit log, newest first: of one channel (its moderators and owner, admins), or of
    /// everything the asker may see. `before` pages back by entry id. Answered with `Audit`.
    Audit {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Name>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        limit: u32,
    },
    /// The open invite tokens of a channel (moderators, owner and admins). Answered with
    /// `Invites`.
    ListInvites {
        id: u64,
        channel: Name,
    },
    /// Messages matching a query, newest first, among those the user may read. Answered with
    /// `SearchResults`.
    Search {
        id: u64,
        /// Words, and phrases in double quotes; a message must hold every one.
        query: String,
        #[serde(default)]
        channel: Option<Name>,
        /// A user name, or a session path `user/machine/session`.
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        kind: Option<SessionKind>,
        /// Milliseconds since the epoch: sent at or after.
        #[serde(default)]
        since: Option<i64>,
        /// Milliseconds since the epoch: sent before.
        #[serde(default)]
        until: Option<i64>,
        /// The `next` of the page before.
        #[serde(default)]
        before: Option<String>,
        limit: u32,
    },
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
            Self::Search { .. } => "search",
            Self::Who { .. } => "who",
            Self::MarkRead { .. } => "mark_read",
            Self::AddMachine { .. } => "add_machine",
            Self::ListMachines { .. } => "list_machines",
            Self::RemoveMachine { .. } => "remove_machine",
            Self::AddMember { .. } => "add_member",
            Self::RemoveMember { .. } => "remove_member",
            Self::Relay { .. } => "relay",
            Self::InviteMachine { .. } => "invite_machine",
            Self::Enroll { .. } => "enroll",
            Self::SetHumanKey { .. } => "set_human_key",
            Self::Moderate { .. } => "moderate",
            Self::CreateInvite { .. } => "create_invite",
            Self::DescribeChannel { .. } => "describe_channel",
            Self::BanUser { .. } => "ban_user",
            Self::UnbanUser { .. } => "unban_user",
            Self::ListUsers { .. } => "list_users",
            Self::Audit { .. } => "audit",
            Self::ListInvites { .. } => "list_invites",
        }
    }

    /// The request id, for every frame after the handshake.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            Self::Hello { .. }
            | Self::Auth { .. }
            | Self::Register { .. }
            | Self::Enroll { .. } => None,
            Self::CreateChannel { id, .. }
            | Self::ListChannels { id, .. }
            | Self::Join { id, .. }
            | Self::Leave { id, .. }
            | Self::Send { id, .. }
            | Self::Whisper { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::MarkRead { id, .. }
            | Self::AddMachine { id, .. }
            | Self::ListMachines { id }
            | Self::RemoveMachine { id, .. }
            | Self::AddMember { id, .. }
            | Self::RemoveMember { id, .. }
            | Self::Relay { id, .. }
            | Self::InviteMachine { id, .. }
            | Self::SetHumanKey { id, .. }
            | Self::Moderate { id, .. }
            | Self::CreateInvite { id, .. }
            | Self::DescribeChannel { id, .. }
            | Self::BanUser { id, .. }
            | Self::UnbanUser { id, .. }
            | Self::ListUsers { id, .. }
            | Self::Audit { id, .. }
            | Self::ListInvites { id, .. }
            | Self::Search { id, .. } => Some(*id),
        }
    }

    /// The same request under the id the link assigns (callers build frames before it is known).
    pub fn with_id(mut self, new_id: u64) -> Self {
        match &mut self {
            Self::Hello { .. }
            | Self::Auth { .. }
            | Self::Register { .. }
            | Self::Enroll { .. } => {}
            Self::CreateChannel { id, .. }
            | Self::ListChannels { id, .. }
            | Self::Join { id, .. }
            | Self::Leave { id, .. }
            | Self::Send { id, .. }
            | Self::Whisper { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::MarkRead { id, .. }
            | Self::AddMachine { id, .. }
            | Self::ListMachines { id }
            | Self::RemoveMachine { id, .. }
            | Self::AddMember { id, .. }
            | Self::RemoveMember { id, .. }
            | Self::Relay { id, .. }
            | Self::InviteMachine { id, .. }
            | Self::SetHumanKey { id, .. }
            | Self::Moderate { id, .. }
            | Self::CreateInvite { id, .. }
            | Self::DescribeChannel { id, .. }
            | Self::BanUser { id, .. }
            | Self::UnbanUser { id, .. }
            | Self::ListUsers { id, .. }
            | Self::Audit { id, .. }
            | Self::ListInvites { id, .. }
            | Self::Search { id, .. } => *id = new_id,
        }
        self
    }
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
    /// A request failed. `id` is absent when the failing frame's id could not be read; before
    /// authentication the connection is closed after it, afterwards it stays open.
    Error {
        #[serde(default)]
        id: Option<u64>,
        code: ErrorCode,
        message: String,
        /// With `rate_limited`: how long to wait before trying again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A request that has nothing else to say succeeded.
    Done {
        id: u64,
    },
    /// Answer to `Leave`. `membership_ended` is false when another session of the same user
    /// still receives the channel, so the user stays a member.
    Left {
        id: u64,
        channel: Name,
        membership_ended: bool,
    },
    ChannelCreated {
        id: u64,
        channel: ChannelInfo,
    },
    Channels {
        id: u64,
        channels: Vec<ChannelInfo>,
        /// More channels follow the last one listed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Answer to `Join`. Live messages of this channel follow it on this connection.
    Joined {
        id: u64,
        channel: ChannelInfo,
        /// This session handle's read position in the channel (0 when never read).
        read_seq: u64,
        /// This join made the user a member (they were not one before).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        new_member: bool,
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
        /// More messages match than this page holds (pages are cut by count and by size).
        #[serde(default)]
        more: bool,
    },
    Who {
        id: u64,
        #[serde(default)]
        channel: Option<Name>,
        sessions: Vec<SessionInfo>,
        /// With a channel: every member user, online or not.
        #[serde(default)]
        members: Vec<Name>,
        /// Either list was cut at `MAX_WHO_ENTRIES`, so the answer fits a frame.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
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
    /// A relay from another session of the same user.
    Relay {
        from: SessionPath,
        from_kind: SessionKind,
        body: RelayBody,
    },
    /// Answer to `InviteMachine`: the one-time code, valid until `expires` (ms since epoch).
    MachineInvite {
        id: u64,
        machine: Name,
        code: String,
        expires: i64,
    },
    /// A moderation act in a channel this session receives (or one that removed it from it).
    Moderation(ModerationEvent),
    /// Answer to `CreateInvite`.
    ChannelInvite {
        id: u64,
        channel: Name,
        token: String,
        uses: u32,
        /// Milliseconds since the epoch.
        expires: i64,
    },
    /// Answer to `DescribeChannel`.
    ChannelDetails {
        id: u64,
        details: ChannelDetails,
    },
    /// Answer to `Search`: a page of hits, newest first; `next` asks for the page after it.
    SearchResults {
        id: u64,
        hits: Vec<SearchHit>,
        #[serde(default)]
        next: Option<String>,
    },
    /// Answer to `ListUsers`.
    Users {
        id: u64,
        users: Vec<UserInfo>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Answer to `Audit`, newest first.
    Audit {
        id: u64,
        entries: Vec<AuditEntry>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Answer to `ListInvites`.
    Invites {
        id: u64,
        channel: Name,
        invites: Vec<InviteInfo>,
    },
    /// A direct conversation of this session's user was just opened (by either of its two
    /// users): join it to receive its messages.
    Opened {
        channel: ChannelInfo,
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
            Self::Left { .. } => "left",
            Self::ChannelCreated { .. } => "channel_created",
            Self::Channels { .. } => "channels",
            Self::Joined { .. } => "joined",
            Self::Sent { .. } => "sent",
            Self::History { .. } => "history",
            Self::Who { .. } => "who",
            Self::Machines { .. } => "machines",
            Self::MachineInvite { .. } => "machine_invite",
            Self::Message(_) => "message",
            Self::Whisper(_) => "whisper",
            Self::Presence(_) => "presence",
            Self::Closing { .. } => "closing",
            Self::Relay { .. } => "relay",
            Self::Moderation(_) => "moderation",
            Self::ChannelInvite { .. } => "channel_invite",
            Self::ChannelDetails { .. } => "channel_details",
            Self::SearchResults { .. } => "search_results",
            Self::Users { .. } => "users",
            Self::Audit { .. } => "audit",
            Self::Invites { .. } => "invites",
            Self::Opened { .. } => "opened",
        }
    }

    /// The id of the request this frame answers, if it answers one.
    pub fn reply_to(&self) -> Option<u64> {
        match self {
            Self::Error { id, .. } => *id,
            Self::Done { id }
            | Self::Left { id, .. }
            | Self::ChannelCreated { id, .. }
            | Self::Channels { id, .. }
            | Self::Joined { id, .. }
            | Self::Sent { id, .. }
            | Self::History { id, .. }
            | Self::Who { id, .. }
            | Self::Machines { id, .. }
            | Self::MachineInvite { id, .. }
            | Self::ChannelInvite { id, .. }
            | Self::ChannelDetails { id, .. }
            | Self::SearchResults { id, .. }
            | Self::Users { id, .. }
            | Self::Audit { id, .. }
            | Self::Invites { id, .. } => Some(*id),
            Self::Challenge { .. }
            | Self::Welcome { .. }
            | Self::Message(_)
            | Self::Whisper(_)
            | Self::Presence(_)
            | Self::Closing { .. }
            | Self::Relay { .. }
            | Self::Moderation(_)
            | Self::Opened { .. } => None,
        }
    }

    pub fn error(id: Option<u64>, e: ProtocolError) -> Self {
        Self::Error {
            id,
            code: e.code,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
        }
    }
}
