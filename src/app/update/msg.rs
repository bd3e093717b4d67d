//! What reaches `update` (`Msg`, with `Reply` for a finished `Cmd`) and what it asks the
//! event loop to do (`Cmd`). Types only: the handling lives beside them, one file per source.

use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::net::client::LocalServer;
use crate::net::link::{HistoryPage, JoinReceipt, LinkEvent, WhoReport};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Audience, AuditEntry, Change, ChannelAct, ChannelDetails, ChannelInfo, RelayBody, SearchHit,
    SessionInfo, Visibility,
};

/// Everything that can happen to the TUI.
#[derive(Debug)]
pub enum Msg {
    /// `msg` is about server `server` (an index into `App::servers`): its link's events,
    /// the replies to commands sent there, its tick.
    On {
        server: usize,
        msg: Box<Msg>,
    },
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize,
    Link(LinkEvent),
    Done(Reply),
    /// A second passed (reconnect countdown, read positions).
    Tick,
    /// Zero set-up started a server in the background for this TUI.
    LocalServerStarted(LocalServer),
}

/// The outcome of a `Cmd`.
#[derive(Debug)]
pub enum Reply {
    Channels {
        list: Vec<ChannelInfo>,
        why: Listing,
    },
    /// Everyone online, to find `user`'s human session for `/msg USER`.
    UserSessions {
        user: Name,
        sessions: Vec<SessionInfo>,
        text: Option<String>,
    },
    Joined(JoinReceipt),
    History {
        channel: Name,
        page: HistoryPage,
        older: bool,
    },
    Who {
        channel: Option<Name>,
        report: WhoReport,
        /// The person asked (`/who`): say the answer in the room.
        show: bool,
    },
    Created(ChannelInfo),
    Left(Name),
    /// The server stored message `id` as `seq` (found by its id: its channel may have been
    /// renamed meanwhile).
    Sent {
        id: u64,
        seq: u64,
        ts: i64,
    },
    Whispered {
        to: SessionPath,
        id: u64,
    },
    /// Message or whisper `id` was not delivered; its entry keeps the text.
    NotSent {
        id: u64,
        error: String,
    },
    /// An invite token for `channel` (`/invite`).
    Invite {
        channel: Name,
        token: String,
        uses: u32,
        /// Milliseconds since the epoch.
        expires: i64,
    },
    /// A page of a channel's audit log, or why it could not be read; `older` pages back.
    Audit {
        channel: Name,
        older: bool,
        page: Result<AuditPage, String>,
    },
    /// What `/search` found, newest first.
    Found {
        query: String,
        hits: Vec<SearchHit>,
        /// Where the page of older hits starts, if there are any.
        next: Option<String>,
        /// This page follows an earlier one of the same search.
        older: bool,
    },
    /// A channel's details.
    Details(Box<ChannelDetails>),
    /// A page of a thread.
    Thread {
        channel: Name,
        root: u64,
        page: HistoryPage,
    },
    /// A request failed; `context` says which, for the person reading it.
    Failed {
        context: String,
        error: String,
    },
}

/// Audit entries, newest first, and whether older ones remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub more: bool,
}

/// Why the channels are listed: what to do with the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The first connect: join the ones I am a member of.
    Startup,
    /// `/list`: show them in the room.
    Show,
    /// Keep Tab's channel names current.
    Refresh,
}

/// What the event loop should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Every channel this user may see (paged through by the link).
    ListChannels(Listing),
    /// Find the human session of `user` to whisper to (`/msg USER [TEXT]`).
    FindUser {
        user: Name,
        text: Option<String>,
    },
    /// `invite`: a token that lets the user into a private channel.
    Join {
        channel: Name,
        invite: Option<String>,
    },
    Leave(Name),
    Create(Name, Visibility),
    /// Post what I typed; `id` finds its pending entry when the answer comes.
    Send {
        channel: Name,
        text: String,
        id: u64,
        /// The message it answers (typed in a thread).
        reply_to: Option<u64>,
    },
    Whisper {
        to: SessionPath,
        text: String,
        id: u64,
    },
    /// `before` pages back, `after` forward, neither: the newest page.
    History {
        channel: Name,
        before: Option<u64>,
        after: Option<u64>,
    },
    /// A page of a thread (`/thread`): its root and the replies to it before `before`.
    Thread {
        channel: Name,
        root: u64,
        before: Option<u64>,
    },
    /// `/search`: the newest messages holding every word of `query`, or (with `before`, a
    /// search's `next`) the page older than an earlier one.
    Search {
        query: String,
        before: Option<String>,
    },
    /// `show`: the person asked, so the answer is said in the room.
    Who {
        channel: Option<Name>,
        show: bool,
    },
    /// Read a channel's details (its pins, for the top of its panes).
    Describe(Name),
    /// Edit, delete or react to a message (the event comes back live, like a message).
    Change {
        channel: Name,
        change: Change,
        text: String,
    },
    /// Let a user into a channel, or end their membership.
    Member {
        channel: Name,
        user: Name,
        add: bool,
    },
    MarkRead {
        channel: Name,
        seq: u64,
    },
    Relay {
        to: Option<SessionPath>,
        audience: Audience,
        body: RelayBody,
    },
    /// A moderation act or setting in `channel`; the channel hears of it as a `Moderation`
    /// event, so success needs no reply.
    Moderate {
        channel: Name,
        act: ChannelAct,
        reason: Option<String>,
    },
    /// Make an invite token (`/invite`).
    Invite {
        channel: Name,
        uses: Option<u32>,
        ttl_ms: Option<u64>,
    },
    /// A page of the channel's audit log: the newest, or the one before entry `before`.
    Audit {
        channel: Name,
        before: Option<u64>,
    },
    Bell,
    /// Take the mouse (wheel, clicks), or give it back so the terminal selects text.
    MouseCapture(bool),
    /// Zero set-up again, claiming this user name (the local one was taken).
    Register(Name),
}
