//! The TUI's state changes, driven by messages and keys, with no terminal and no network.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use ratatui_textarea::TextArea;

use super::{Cmd, Listing, Msg, Reply, note};
use crate::app::model::{
    App, Connection, Delivery, EntryKind, MAX_LOADED, Overlay, Room, RoomId, Split,
};
use crate::app::settings::Settings;
use crate::net::link::{HistoryPage, JoinReceipt, LinkEvent, WhoReport};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Audience, Autonomy, ChannelAct, ChannelAutonomy, ChannelInfo, ChatMessage, ModerationEvent,
    PresenceChange, RelayBody, SessionInfo, SessionKind, Visibility, WhisperMessage,
};

/// The test clock: every message arrives at this time unless a test says otherwise.
pub const NOW: i64 = 1_764_000_600_000;

/// `update` at the test clock.
pub fn update(app: &mut App, msg: Msg) -> Vec<Cmd> {
    super::update(app, msg, NOW)
}

/// `update` at a time of the test's choosing.
pub fn update_at(app: &mut App, msg: Msg, now_ms: i64) -> Vec<Cmd> {
    super::update(app, msg, now_ms)
}

pub fn path(s: &str) -> SessionPath {
    SessionPath::parse(s).unwrap()
}

pub fn name(s: &str) -> Name {
    Name::channel(s).unwrap()
}

pub fn message(channel: &str, seq: u64, from: &str, text: &str) -> ChatMessage {
    ChatMessage {
        from_kind: None,
        channel: name(channel),
        seq,
        ts: 1_764_000_000_000 + seq as i64 * 60_000,
        from: path(from),
        text: text.into(),
        reply_to: None,
        change: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
    }
}

/// The link drops and comes back as alice/laptop/tui; what the TUI asks for then.
pub fn reconnect(app: &mut App) -> Vec<Cmd> {
    update(
        app,
        Msg::Link(LinkEvent::Disconnected {
            reason: "server restarted".into(),
            retry_in: Duration::from_secs(1),
        }),
    );
    update(
        app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    )
}

/// A TUI connected as alice/laptop/tui with #general and #ops joined, #general in view.
pub fn connected() -> App {
    let mut app = App::new(
        Settings::defaults(),
        "ws://test:7420".into(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    for channel in ["general", "ops"] {
        update(&mut app, Msg::Done(Reply::Joined(joined(channel))));
    }
    app
}

/// The answer to joining an empty public `channel` for the first time.
pub fn joined(channel: &str) -> JoinReceipt {
    JoinReceipt {
        channel: ChannelInfo {
            topic: String::new(),
            archived: false,
            name: name(channel),
            visibility: Visibility::Public,
            member: true,
            last_seq: 0,
            members: 0,
        },
        read_seq: 0,
        new_member: true,
    }
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn key_with(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Cmd> {
    update(app, Msg::Key(KeyEvent::new(code, modifiers)))
}

pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// A page of #general history from the server: `seqs`, whether `more` remain, `older` pages.
pub fn history(app: &mut App, seqs: std::ops::RangeInclusive<u64>, more: bool, older: bool) {
    let messages = seqs
        .map(|i| message("general", i, "bob/desk/cli", "x"))
        .collect();
    let page = HistoryPage { messages, more };
    update(
        app,
        Msg::Done(Reply::History {
            channel: name("general"),
            page,
            older,
        }),
    );
}

/// A channel message arriving live.
pub fn live(app: &mut App, m: ChatMessage) -> Vec<Cmd> {
    update(app, Msg::Link(LinkEvent::Message(m)))
}

pub fn room<'a>(app: &'a App, channel: &str) -> &'a Room {
    &app.rooms[app.room_index(&RoomId::Channel(name(channel))).unwrap()]
}

/// A channel as the server lists it.
pub fn info(n: &str, member: bool, last_seq: u64) -> ChannelInfo {
    ChannelInfo {
        topic: String::new(),
        archived: false,
        name: name(n),
        visibility: Visibility::Public,
        member,
        last_seq,
        members: 0,
    }
}

/// A user name.
pub fn user(s: &str) -> Name {
    Name::user(s).unwrap()
}

/// A moderation act in `channel` by `by`, arriving live.
pub fn moderation(channel: &str, by: &str, act: ChannelAct, reason: Option<&str>) -> Msg {
    Msg::Link(LinkEvent::Moderation(ModerationEvent {
        channel: name(channel),
        by: path(by),
        act,
        reason: reason.map(Into::into),
        ts: NOW,
    }))
}

/// The server's answer to who is in #general: `sessions` online, every member user.
pub fn who_in_general(sessions: &[(&str, SessionKind)], members: &[&str], show: bool) -> Msg {
    Msg::Done(Reply::Who {
        channel: Some(name("general")),
        report: WhoReport {
            sessions: sessions
                .iter()
                .map(|(p, kind)| SessionInfo {
                    path: path(p),
                    kind: *kind,
                })
                .collect(),
            members: members.iter().map(|m| user(m)).collect(),
            truncated: false,
        },
        show,
    })
}

/// The `Cmd` that asks for `act` in #general.
pub fn asks(act: ChannelAct, reason: Option<&str>) -> Cmd {
    Cmd::Moderate {
        channel: name("general"),
        act,
        reason: reason.map(Into::into),
    }
}

/// Types `line` and presses Enter; what that asks for.
pub fn run(app: &mut App, line: &str) -> Vec<Cmd> {
    type_text(app, line);
    key(app, KeyCode::Enter)
}

/// The text of the newest entry of the focused room.
pub fn last_line(app: &App) -> String {
    app.focused_room().entries.back().unwrap().text.clone()
}

/// The details of a public `channel` nobody governs yet, as a member reads them.
pub fn details(channel: &str) -> crate::net::protocol::ChannelDetails {
    crate::net::protocol::ChannelDetails {
        name: name(channel),
        visibility: crate::net::protocol::Visibility::Public,
        topic: String::new(),
        archived: false,
        owner: None,
        moderators: Vec::new(),
        role: Some(crate::net::protocol::Role::Member),
        muted_until: None,
        agent_turns: 20,
        agent_run: 0,
        reply_mode: crate::net::protocol::ReplyMode::Open,
        slow_seconds: 0,
        floor: None,
        last_seq: 0,
        pins: Vec::new(),
    }
}

mod agents;
mod commands;
mod govern;
mod keys;
mod link;
mod moderation;
mod servers;
