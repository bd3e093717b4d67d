//! What reaches `update` (`Msg`, with `Reply` for a finished `Cmd`) and what it asks the
//! event loop to do (`Cmd`). Types only: the handling lives beside them, one file per source.

use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::app::model::RoomId;
use crate::net::link::{HistoryPage, JoinReceipt, LinkEvent, WhoReport};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Audience, ChannelInfo, RelayBody, Visibility};

/// Everything that can happen to the TUI.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize,
    Link(LinkEvent),
    Done(Reply),
    /// A second passed (reconnect countdown, read positions).
    Tick,
}

/// The outcome of a `Cmd`.
#[derive(Debug)]
pub enum Reply {
    Channels(Vec<ChannelInfo>),
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
    /// The server stored message `id` as `seq`.
    Sent {
        channel: Name,
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
        room: RoomId,
        id: u64,
        error: String,
    },
    /// A request failed; `context` says which, for the person reading it.
    Failed {
        context: String,
        error: String,
    },
}

/// What the event loop should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    ListChannels,
    Join(Name),
    Leave(Name),
    Create(Name, Visibility),
    /// Post what I typed; `id` finds its pending entry when the answer comes.
    Send {
        channel: Name,
        text: String,
        id: u64,
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
    /// `show`: the person asked, so the answer is said in the room.
    Who {
        channel: Option<Name>,
        show: bool,
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
    Bell,
}
