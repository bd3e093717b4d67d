//! `update(&mut App, Msg) -> Vec<Cmd>`: the only code that changes the model. No I/O: what
//! needs the network or the terminal comes back as a `Cmd` for the event loop to carry out.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui_textarea::{CursorMove, TextArea};

use crate::net::link::{HistoryPage, JoinReceipt, LinkEvent, WhoReport};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Audience, Autonomy, ChannelInfo, ChatMessage, PresenceChange, RelayBody, SessionKind,
    Visibility,
};

use super::model::{
    AgentInfo, App, Approval, Completion, Connection, Entry, EntryKind, Overlay, Pane, Room,
    RoomId, Search, Split,
};
use super::settings::{Action, BellMode};
use super::text::{mentions, unix_newlines};
use super::widgets::messages::entry_height;

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
    Tick {
        now_ms: i64,
    },
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
    Whispered {
        to: SessionPath,
        text: String,
        ts: i64,
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
    Send {
        channel: Name,
        text: String,
    },
    Whisper {
        to: SessionPath,
        text: String,
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

const COMMANDS: &[&str] = &[
    "/add",
    "/autonomy",
    "/bell",
    "/close",
    "/create",
    "/help",
    "/join",
    "/leave",
    "/msg",
    "/quit",
    "/remove",
    "/split",
    "/who",
];

pub fn update(app: &mut App, msg: Msg) -> Vec<Cmd> {
    // Scrolled past the top at the last draw: settle at the top, so neither PgDn feels dead
    // nor every later draw wraps the whole room again.
    for pane in &mut app.panes {
        if let Some(max) = pane.max_scroll.get() {
            pane.scroll = pane.scroll.min(max);
        }
    }
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Mouse(mouse) => on_mouse(app, mouse),
        Msg::Paste(text) => {
            app.input.insert_str(unix_newlines(&text));
            Vec::new()
        }
        Msg::Resize => Vec::new(),
        Msg::Link(event) => on_link(app, event),
        Msg::Done(reply) => on_reply(app, reply),
        Msg::Tick { now_ms } => {
            app.now_ms = now_ms;
            mark_visible_read(app)
        }
    }
}

// ---- rooms -------------------------------------------------------------------------------

fn room_for(app: &mut App, id: RoomId) -> usize {
    if let Some(index) = app.room_index(&id) {
        return index;
    }
    app.rooms.push(Room::new(id));
    app.rooms.len() - 1
}

/// Shows `room` in the focused pane and resets its unread state.
fn open_room(app: &mut App, room: usize) {
    let focus = app.focus;
    app.search = None;
    app.panes[focus] = Pane::new(room);
    let r = &mut app.rooms[room];
    r.marker = (r.read_seq < r.last_seq).then_some(r.read_seq);
    r.unread = 0;
    r.mentions = 0;
}

fn note(app: &mut App, room: usize, kind: EntryKind, text: impl Into<String>, ts: i64) {
    let entry = Entry {
        seq: None,
        ts,
        from: None,
        text: text.into(),
        kind,
        mention: false,
        height: Default::default(),
    };
    app.rooms[room].entries.push_back(entry);
    app.rooms[room].trim_oldest();
}

/// An error shown inline in the focused room.
fn error(app: &mut App, text: impl Into<String>) {
    let room = app.focused_pane().room;
    note(app, room, EntryKind::Error, text, now_ms());
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Advances read positions of rooms on screen (batched once a second, not per message).
fn mark_visible_read(app: &mut App) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for pane in &app.panes {
        if pane.scroll != 0 {
            continue;
        }
        let room = &mut app.rooms[pane.room];
        if let Some(channel) = room.channel().cloned() {
            if room.last_seq > room.read_seq {
                room.read_seq = room.last_seq;
                cmds.push(Cmd::MarkRead {
                    channel,
                    seq: room.last_seq,
                });
            }
        }
    }
    cmds
}

// ---- link events ---------------------------------------------------------------------------

fn on_link(app: &mut App, event: LinkEvent) -> Vec<Cmd> {
    match event {
        LinkEvent::Connected { path, .. } => {
            app.connection = Connection::Connected;
            let first = !app.was_connected;
            app.was_connected = true;
            note(
                app,
                0,
                EntryKind::Note,
                format!("connected to {} as {path}", app.server),
                now_ms(),
            );
            app.me = Some(path);
            let mut cmds = vec![Cmd::Relay {
                to: None,
                audience: Audience::Agents,
                body: RelayBody::AutonomyQuery,
            }];
            if first {
                cmds.push(Cmd::ListChannels);
            }
            cmds
        }
        LinkEvent::Disconnected { reason, retry_in } => {
            app.now_ms = now_ms();
            let until_ms = app.now_ms + retry_in.as_millis() as i64;
            app.connection = Connection::Reconnecting { reason, until_ms };
            Vec::new()
        }
        LinkEvent::Closed { reason } => {
            note(
                app,
                0,
                EntryKind::Error,
                format!("offline: {reason}"),
                now_ms(),
            );
            app.connection = Connection::Offline(reason);
            Vec::new()
        }
        LinkEvent::Message(message) => on_message(app, message),
        LinkEvent::Whisper(w) => {
            let room = room_for(app, RoomId::Whisper(w.from.clone()));
            app.rooms[room].entries.push_back(Entry {
                seq: None,
                ts: w.ts,
                from: Some(w.from),
                text: w.text,
                kind: EntryKind::Whisper { outgoing: false },
                mention: true,
                height: Default::default(),
            });
            app.rooms[room].trim_oldest();
            arrived(app, room, true, None)
        }
        LinkEvent::Presence(p) => {
            if matches!(p.change, PresenceChange::Offline | PresenceChange::Left) {
                // An agent that went away no longer has levels to show.
                app.agents.remove(&p.session.path);
            }
            let Some(room) = app.room_index(&RoomId::Channel(p.channel.clone())) else {
                return Vec::new();
            };
            let r = &mut app.rooms[room];
            r.online.retain(|s| s.path != p.session.path);
            match p.change {
                PresenceChange::Joined | PresenceChange::Online => r.online.push(p.session.clone()),
                PresenceChange::Left | PresenceChange::Offline => {}
            }
            r.online.sort_by(|a, b| a.path.cmp(&b.path));
            if p.change == PresenceChange::Joined && !r.members.contains(&p.session.path.user) {
                r.members.push(p.session.path.user.clone());
                r.members.sort();
            }
            let what = match p.change {
                PresenceChange::Joined => Some("joined"),
                PresenceChange::Left => Some("left"),
                PresenceChange::Online | PresenceChange::Offline => None,
            };
            if let Some(what) = what {
                note(
                    app,
                    room,
                    EntryKind::Note,
                    format!("{} {what}", p.session.path),
                    now_ms(),
                );
            }
            Vec::new()
        }
        LinkEvent::Relay {
            from,
            from_kind,
            body,
        } => on_relay(app, from, from_kind, body),
        LinkEvent::ChannelLost { channel, reason } => {
            let room = room_for(app, RoomId::Channel(channel.clone()));
            note(
                app,
                room,
                EntryKind::Error,
                format!("lost #{channel}: {reason}"),
                now_ms(),
            );
            Vec::new()
        }
    }
}

fn on_message(app: &mut App, message: ChatMessage) -> Vec<Cmd> {
    let room = room_for(app, RoomId::Channel(message.channel.clone()));
    let mine = app.me.as_ref() == Some(&message.from);
    let mention = !mine
        && app
            .me
            .as_ref()
            .is_some_and(|me| mentions(&message.text, me.user.as_str()));
    let channel = message.channel.clone();
    let inserted = app.rooms[room].insert_message(Entry {
        seq: Some(message.seq),
        ts: message.ts,
        from: Some(message.from),
        text: message.text,
        kind: EntryKind::Message,
        mention,
        height: Default::default(),
    });
    if !inserted {
        return Vec::new();
    }
    app.rooms[room].trim_oldest();
    if mine {
        return Vec::new();
    }
    arrived(app, room, mention, Some(&channel))
}

/// Bookkeeping for a new message in `room`: unread counts, "new below", the bell.
fn arrived(app: &mut App, room: usize, mention: bool, channel: Option<&Name>) -> Vec<Cmd> {
    let shown = app.panes.iter().any(|p| p.room == room);
    for pane in app
        .panes
        .iter_mut()
        .filter(|p| p.room == room && p.scroll > 0)
    {
        pane.unseen += 1;
    }
    if !shown {
        let r = &mut app.rooms[room];
        r.unread += 1;
        if mention {
            r.mentions += 1;
        }
    }
    let bell = match channel {
        Some(channel) => app.settings.bell(channel.as_str()),
        None => BellMode::Mentions,
    };
    let ring = match bell {
        BellMode::All => true,
        BellMode::Mentions => mention,
        BellMode::None => false,
    };
    if ring { vec![Cmd::Bell] } else { Vec::new() }
}

fn on_relay(app: &mut App, from: SessionPath, from_kind: SessionKind, body: RelayBody) -> Vec<Cmd> {
    // The server relays only between my own sessions; an agent's report or request is mine.
    if from_kind != SessionKind::Agent {
        return Vec::new();
    }
    match body {
        RelayBody::PermissionRequest {
            request_id,
            tool_name,
            description,
            input_preview,
        } => {
            note(
                app,
                0,
                EntryKind::Note,
                format!(
                    "{from} asks to use {tool_name}: {description} (F2 to review, Alt-Y allow, Alt-N deny)"
                ),
                now_ms(),
            );
            app.approvals.push(Approval {
                agent: from,
                request_id,
                tool_name,
                description,
                input_preview,
                received: now_ms(),
                sent: None,
                answer: None,
            });
            vec![Cmd::Bell]
        }
        RelayBody::PermissionAnswered {
            request_id,
            allow,
            by,
        } => {
            if let Some(a) = app
                .approvals
                .iter_mut()
                .find(|a| a.agent == from && a.request_id == request_id)
            {
                a.answer = Some((allow, by, now_ms()));
            }
            Vec::new()
        }
        RelayBody::AutonomyReport { levels, default } => {
            let levels = levels.into_iter().map(|l| (l.channel, l.level)).collect();
            app.agents.insert(from, AgentInfo { levels, default });
            Vec::new()
        }
        RelayBody::PermissionVerdict { .. }
        | RelayBody::SetAutonomy { .. }
        | RelayBody::AutonomyQuery => Vec::new(),
    }
}

// ---- replies -------------------------------------------------------------------------------

fn on_reply(app: &mut App, reply: Reply) -> Vec<Cmd> {
    match reply {
        Reply::Channels(list) => {
            app.known_channels = list.iter().map(|c| c.name.clone()).collect();
            list.into_iter()
                .filter(|c| c.member)
                .map(|c| Cmd::Join(c.name))
                .collect()
        }
        Reply::Joined(receipt) => {
            let name = receipt.channel.name.clone();
            if !app.known_channels.contains(&name) {
                app.known_channels.push(name.clone());
            }
            let room = room_for(app, RoomId::Channel(name.clone()));
            let r = &mut app.rooms[room];
            r.read_seq = receipt.read_seq;
            r.last_seq = r.last_seq.max(receipt.channel.last_seq);
            r.unread = r.last_seq.saturating_sub(r.read_seq) as usize;
            r.loading = true;
            // A channel the person asked for comes into view (so does any, over the status room).
            if app.focus_on_join.as_ref() == Some(&name) || app.focused_room().id == RoomId::Home {
                app.focus_on_join = None;
                open_room(app, room);
            }
            vec![
                Cmd::History {
                    channel: name.clone(),
                    before: None,
                    after: None,
                },
                Cmd::Who {
                    channel: Some(name),
                    show: false,
                },
            ]
        }
        Reply::History {
            channel,
            page,
            older,
        } => {
            let room = room_for(app, RoomId::Channel(channel));
            let me = app.me.as_ref().map(|m| m.user.clone());
            let r = &mut app.rooms[room];
            r.loading = false;
            if older && page.messages.is_empty() {
                r.older_exhausted = true;
            }
            if older && !page.more {
                r.older_exhausted = true;
            }
            for m in page.messages {
                let mention = me
                    .as_ref()
                    .is_some_and(|u| *u != m.from.user && mentions(&m.text, u.as_str()));
                r.insert_message(Entry {
                    seq: Some(m.seq),
                    ts: m.ts,
                    from: Some(m.from),
                    text: m.text,
                    kind: EntryKind::Message,
                    mention,
                    height: Default::default(),
                });
            }
            if older {
                r.trim_newest();
            } else {
                r.trim_oldest();
                if r.oldest_seq().is_none_or(|s| s <= 1) {
                    r.older_exhausted = true;
                }
            }
            if app.room_in_view(room) {
                let r = &mut app.rooms[room];
                r.marker = (r.read_seq < r.last_seq).then_some(r.read_seq);
                r.unread = 0;
            }
            Vec::new()
        }
        Reply::Who {
            channel,
            report,
            show,
        } => {
            let sessions: Vec<String> = report
                .sessions
                .iter()
                .map(|s| format!("{} ({})", s.path, s.kind.as_str()))
                .collect();
            let members: Vec<String> = report.members.iter().map(ToString::to_string).collect();
            let text = match &channel {
                Some(c) => format!(
                    "#{c}: members {}; online {}",
                    members.join(", "),
                    sessions.join(", ")
                ),
                None => format!("online: {}", sessions.join(", ")),
            };
            if let Some(channel) = channel {
                let room = room_for(app, RoomId::Channel(channel));
                app.rooms[room].online = report.sessions;
                app.rooms[room].members = report.members;
            }
            if show {
                let room = app.focused_pane().room;
                note(app, room, EntryKind::Note, text, now_ms());
            }
            Vec::new()
        }
        Reply::Created(info) => {
            let room = app.focused_pane().room;
            note(
                app,
                room,
                EntryKind::Note,
                format!("created #{} ({})", info.name, info.visibility.as_str()),
                now_ms(),
            );
            vec![Cmd::Join(info.name)]
        }
        Reply::Left(channel) => {
            if let Some(room) = app.room_index(&RoomId::Channel(channel.clone())) {
                app.search = None;
                app.rooms.remove(room);
                for pane in &mut app.panes {
                    if pane.room == room {
                        *pane = Pane::new(0);
                    } else if pane.room > room {
                        pane.room -= 1;
                    }
                }
            }
            note(
                app,
                0,
                EntryKind::Note,
                format!("left #{channel}"),
                now_ms(),
            );
            Vec::new()
        }
        Reply::Whispered { to, text, ts } => {
            let room = room_for(app, RoomId::Whisper(to));
            app.rooms[room].entries.push_back(Entry {
                seq: None,
                ts,
                from: app.me.clone(),
                text,
                kind: EntryKind::Whisper { outgoing: true },
                mention: false,
                height: Default::default(),
            });
            Vec::new()
        }
        Reply::Failed {
            context,
            error: message,
        } => {
            error(app, format!("{context}: {message}"));
            Vec::new()
        }
    }
}

// ---- keys ------------------------------------------------------------------------------------

fn input_text(input: &TextArea<'static>) -> String {
    unix_newlines(&input.lines().join("\n"))
}

fn set_input(app: &mut App, text: &str) {
    let mut input = TextArea::new(text.split('\n').map(str::to_owned).collect());
    input.set_placeholder_text("Type a message, or /help");
    input.move_cursor(CursorMove::Bottom);
    input.move_cursor(CursorMove::End);
    app.input = input;
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Cmd> {
    if let Some(overlay) = app.overlay {
        return on_overlay_key(app, overlay, key);
    }
    if app.search.is_some() {
        return on_search_key(app, key);
    }
    let action = app.settings.keymap.action(&key);
    if action != Some(Action::Complete) {
        app.completion = None;
    }
    let empty = app.input.is_empty();
    match (action, key.code) {
        (Some(Action::Quit), _) => {
            app.quit = true;
            return Vec::new();
        }
        (Some(Action::Send), _) => return submit(app),
        (Some(Action::Newline), _) => app.input.insert_newline(),
        (Some(Action::Complete), _) if !empty => complete(app),
        (Some(Action::Complete), _) => cycle_pane(app, 1),
        (Some(Action::NextPane), _) => cycle_pane(app, 1),
        (Some(Action::PrevPane), _) => cycle_pane(app, -1),
        (Some(Action::NextRoom), _) => cycle_room(app, 1),
        (Some(Action::PrevRoom), _) => cycle_room(app, -1),
        (Some(Action::NextUnread), _) => next_unread(app),
        (Some(Action::ScrollUp), _) => return scroll(app, Scroll::PageUp),
        (Some(Action::ScrollDown), _) => return scroll(app, Scroll::PageDown),
        (Some(Action::ScrollTop), _) if empty => return scroll(app, Scroll::Top),
        (Some(Action::ScrollBottom), _) if empty => return scroll(app, Scroll::Bottom),
        (Some(Action::Search), _) => app.search = Some(Search::default()),
        (Some(Action::Help), _) => app.overlay = Some(Overlay::Help),
        (Some(Action::Agents), _) => app.overlay = Some(Overlay::Agents { selected: 0 }),
        (Some(Action::Allow), _) => return answer_oldest(app, true),
        (Some(Action::Deny), _) => return answer_oldest(app, false),
        (Some(Action::Close), _) => {}
        (_, KeyCode::Char('?')) if empty && key.modifiers.is_empty() => {
            app.overlay = Some(Overlay::Help)
        }
        (_, KeyCode::Char('/')) if empty && app.focused_pane().scroll > 0 => {
            app.search = Some(Search::default())
        }
        (_, KeyCode::Up) if empty || app.sent_pos.is_some() => recall(app, -1),
        (_, KeyCode::Down) if app.sent_pos.is_some() => recall(app, 1),
        _ => {
            app.sent_pos = None;
            app.input.input(key);
        }
    }
    Vec::new()
}

fn on_overlay_key(app: &mut App, overlay: Overlay, key: KeyEvent) -> Vec<Cmd> {
    let action = app.settings.keymap.action(&key);
    match overlay {
        Overlay::Help => {
            app.overlay = None;
            if action == Some(Action::Quit) {
                app.quit = true;
            }
            Vec::new()
        }
        Overlay::Agents { selected } => {
            // One list: the permission requests, then my agents.
            let requests = app.approvals.len();
            let count = requests + app.agents.len();
            let agent = selected
                .checked_sub(requests)
                .and_then(|i| app.agents.keys().nth(i).cloned());
            let level = match key.code {
                KeyCode::Char('1') => Some(Autonomy::Mute),
                KeyCode::Char('2') => Some(Autonomy::Notify),
                KeyCode::Char('3') => Some(Autonomy::Converse),
                KeyCode::Char('4') => Some(Autonomy::Act),
                _ => None,
            };
            match (action, key.code, agent, level) {
                (Some(Action::Quit), ..) => app.quit = true,
                (Some(Action::Close | Action::Agents), ..) | (_, KeyCode::Char('q'), ..) => {
                    app.overlay = None
                }
                (_, KeyCode::Up, ..) => {
                    app.overlay = Some(Overlay::Agents {
                        selected: selected.saturating_sub(1),
                    })
                }
                (_, KeyCode::Down, ..) => {
                    app.overlay = Some(Overlay::Agents {
                        selected: (selected + 1).min(count.saturating_sub(1)),
                    })
                }
                (_, _, Some(agent), Some(level)) => {
                    let channel = app.focused_room().channel().cloned();
                    return match autonomy_cmd(app, agent, channel, level) {
                        Ok(cmds) => cmds,
                        Err(message) => {
                            error(app, message);
                            Vec::new()
                        }
                    };
                }
                (Some(Action::Allow), ..) | (_, KeyCode::Char('a' | 'y'), None, _) => {
                    return answer(app, selected, true);
                }
                (Some(Action::Deny), ..) | (_, KeyCode::Char('d' | 'n'), None, _) => {
                    return answer(app, selected, false);
                }
                _ => {}
            }
            Vec::new()
        }
    }
}

fn on_search_key(app: &mut App, key: KeyEvent) -> Vec<Cmd> {
    let action = app.settings.keymap.action(&key);
    let Some(search) = app.search.as_mut() else {
        return Vec::new();
    };
    match (action, key.code) {
        (Some(Action::Quit), _) => app.quit = true,
        (Some(Action::Close), _) => app.search = None,
        (Some(Action::Send), _) => find(app, Direction::Older),
        (_, KeyCode::Up) => find(app, Direction::Older),
        (_, KeyCode::Down) => find(app, Direction::Newer),
        (_, KeyCode::Backspace) => {
            search.query.pop();
            search.hit = None;
            search.failed = false;
        }
        (_, KeyCode::Char(c)) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            search.query.push(c);
            search.hit = None;
            search.failed = false;
        }
        _ => {}
    }
    Vec::new()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Older,
    Newer,
}

/// Moves to the next entry matching the query (case-insensitive) and scrolls it into view.
fn find(app: &mut App, direction: Direction) {
    let pane = app.focused_pane();
    let room = &app.rooms[pane.room];
    let Some(search) = app.search.as_ref() else {
        return;
    };
    if search.query.is_empty() {
        return;
    }
    let needle = search.query.to_lowercase();
    let len = room.entries.len();
    let start = search.hit.filter(|&hit| hit < len).unwrap_or(len);
    let matches = |i: usize| room.entries[i].text.to_lowercase().contains(&needle);
    let found = match direction {
        Direction::Older => (0..start).rev().find(|&i| matches(i)),
        Direction::Newer => (start + 1..len).find(|&i| matches(i)),
    };
    // Scroll so the hit sits mid-pane: the lines of everything below it, less half a screen.
    let pane = app.focused_pane();
    let (width, rows) = (pane.width.get() as usize, pane.viewport.get() as usize);
    let below = found.map(|i| {
        let lines: usize = room
            .entries
            .iter()
            .skip(i + 1)
            .map(|e| entry_height(e, width))
            .sum();
        lines.saturating_sub(rows / 2)
    });
    if let Some(search) = app.search.as_mut() {
        search.failed = found.is_none();
        if found.is_some() {
            search.hit = found;
        }
    }
    if let Some(below) = below {
        let focus = app.focus;
        app.panes[focus].scroll = below;
    }
}

fn recall(app: &mut App, step: isize) {
    if app.sent.is_empty() {
        return;
    }
    let last = app.sent.len() as isize - 1;
    let next: Option<usize> = match app.sent_pos {
        None if step < 0 => Some(last as usize),
        None => None,
        Some(pos) => {
            let p = pos as isize + step;
            (0..=last).contains(&p).then_some(p as usize)
        }
    };
    let pos = match next {
        Some(p) => p,
        None if step > 0 => {
            app.sent_pos = None;
            set_input(app, "");
            return;
        }
        None => 0,
    };
    app.sent_pos = Some(pos);
    let text = app.sent[pos].clone();
    set_input(app, &text);
}

fn cycle_pane(app: &mut App, step: isize) {
    let n = app.panes.len() as isize;
    app.focus = ((app.focus as isize + step).rem_euclid(n)) as usize;
}

fn cycle_room(app: &mut App, step: isize) {
    let order = app.sorted_rooms();
    let current = app.focused_pane().room;
    let at = order.iter().position(|&r| r == current).unwrap_or(0) as isize;
    let next = order[((at + step).rem_euclid(order.len() as isize)) as usize];
    open_room(app, next);
}

fn next_unread(app: &mut App) {
    let order = app.sorted_rooms();
    let pick = order
        .iter()
        .copied()
        .find(|&r| app.rooms[r].mentions > 0)
        .or_else(|| order.iter().copied().find(|&r| app.rooms[r].unread > 0));
    match pick {
        Some(room) => open_room(app, room),
        None => error(app, "nothing unread"),
    }
}

enum Scroll {
    PageUp,
    PageDown,
    Top,
    Bottom,
    Lines(isize),
}

fn scroll(app: &mut App, how: Scroll) -> Vec<Cmd> {
    let focus = app.focus;
    let pane = &mut app.panes[focus];
    let page = pane.viewport.get().saturating_sub(2).max(1) as usize;
    match how {
        Scroll::PageUp => pane.scroll += page,
        Scroll::PageDown => pane.scroll = pane.scroll.saturating_sub(page),
        Scroll::Lines(n) if n > 0 => pane.scroll += n as usize,
        Scroll::Lines(n) => pane.scroll = pane.scroll.saturating_sub(n.unsigned_abs()),
        // Unknown until drawn: far enough, and the next update clamps it to the real top.
        Scroll::Top => pane.scroll = pane.max_scroll.get().unwrap_or(usize::MAX / 2),
        Scroll::Bottom => pane.scroll = 0,
    }
    if pane.scroll == 0 {
        pane.unseen = 0;
    }
    let going_up = pane.at_top.get();
    let scroll_now = pane.scroll;
    let room = &mut app.rooms[pane.room];
    let Some(channel) = room.channel().cloned() else {
        return Vec::new();
    };
    if room.loading {
        return Vec::new();
    }
    // Past the oldest loaded message: page older history in.
    if going_up && scroll_now > 0 && !room.older_exhausted {
        if let Some(oldest) = room.oldest_seq() {
            room.loading = true;
            return vec![Cmd::History {
                channel,
                before: Some(oldest),
                after: None,
            }];
        }
    }
    // Back at the bottom after newer messages were dropped: fetch them again.
    if scroll_now == 0 && room.newer_dropped {
        room.newer_dropped = false;
        room.loading = true;
        return vec![Cmd::History {
            channel,
            before: None,
            after: room.newest_seq(),
        }];
    }
    Vec::new()
}

fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Cmd> {
    match mouse.kind {
        MouseEventKind::ScrollUp => scroll(app, Scroll::Lines(3)),
        MouseEventKind::ScrollDown => scroll(app, Scroll::Lines(-3)),
        _ => Vec::new(),
    }
}

fn answer_oldest(app: &mut App, allow: bool) -> Vec<Cmd> {
    match app
        .approvals
        .iter()
        .position(|a| a.answer.is_none() && a.sent.is_none())
    {
        Some(index) => answer(app, index, allow),
        None => {
            error(app, "no permission request is waiting");
            Vec::new()
        }
    }
}

fn answer(app: &mut App, index: usize, allow: bool) -> Vec<Cmd> {
    let Some(approval) = app.approvals.get_mut(index) else {
        return Vec::new();
    };
    if approval.answer.is_some() {
        return Vec::new();
    }
    approval.sent = Some(allow);
    vec![Cmd::Relay {
        to: Some(approval.agent.clone()),
        audience: Audience::Agents,
        body: RelayBody::PermissionVerdict {
            request_id: approval.request_id.clone(),
            allow,
        },
    }]
}

// ---- the input line ---------------------------------------------------------------------------

fn submit(app: &mut App) -> Vec<Cmd> {
    let text = input_text(&app.input);
    if text.trim().is_empty() {
        return Vec::new();
    }
    app.sent.push(text.clone());
    app.sent_pos = None;
    set_input(app, "");
    if let Some(command) = text.strip_prefix('/') {
        return run_command(app, command);
    }
    let room = app.focused_room();
    match &room.id {
        RoomId::Channel(channel) => vec![Cmd::Send {
            channel: channel.clone(),
            text,
        }],
        RoomId::Whisper(to) => vec![Cmd::Whisper {
            to: to.clone(),
            text,
        }],
        RoomId::Home => {
            error(
                app,
                "this is the status room: /join a channel, or /msg someone",
            );
            Vec::new()
        }
    }
}

fn run_command(app: &mut App, line: &str) -> Vec<Cmd> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arg = words.next();
    let focused_channel = app.focused_room().channel().cloned();
    let channel_arg = |arg: Option<&str>| -> Result<Name, String> {
        match arg {
            Some(a) => Name::channel(a).map_err(|e| e.to_string()),
            None => focused_channel
                .clone()
                .ok_or_else(|| "name a channel".to_owned()),
        }
    };
    let result: Result<Vec<Cmd>, String> = match name {
        "join" | "j" => channel_arg(arg).map(|c| {
            app.focus_on_join = Some(c.clone());
            vec![Cmd::Join(c)]
        }),
        "leave" | "part" => channel_arg(arg).map(|c| vec![Cmd::Leave(c)]),
        "create" => {
            let visibility = match words.next() {
                None | Some("public") => Ok(Visibility::Public),
                Some("unlisted") => Ok(Visibility::Unlisted),
                Some("private") => Ok(Visibility::Private),
                Some(other) => Err(format!(
                    "`{other}` is not a visibility: public, unlisted or private"
                )),
            };
            match (arg, visibility) {
                (Some(a), Ok(v)) => Name::channel(a)
                    .map(|c| vec![Cmd::Create(c, v)])
                    .map_err(|e| e.to_string()),
                (None, _) => Err("usage: /create CHANNEL [public|unlisted|private]".into()),
                (_, Err(e)) => Err(e),
            }
        }
        "msg" | "whisper" => match arg.map(SessionPath::parse) {
            Some(Ok(to)) => {
                let rest = line
                    .splitn(3, char::is_whitespace)
                    .nth(2)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let room = room_for(app, RoomId::Whisper(to.clone()));
                open_room(app, room);
                if rest.is_empty() {
                    Ok(Vec::new())
                } else {
                    Ok(vec![Cmd::Whisper { to, text: rest }])
                }
            }
            Some(Err(e)) => Err(e.to_string()),
            None => Err("usage: /msg user/machine/session TEXT".into()),
        },
        "add" | "invite" | "remove" | "kick" => match (arg.map(Name::user), focused_channel) {
            (Some(Ok(user)), Some(channel)) => Ok(vec![Cmd::Member {
                channel,
                user,
                add: matches!(name, "add" | "invite"),
            }]),
            (Some(Err(e)), _) => Err(e.to_string()),
            (None, _) => Err(format!("usage: /{name} USER (in a channel)")),
            (_, None) => Err("members belong to a channel: switch to one first".into()),
        },
        "who" => match arg {
            Some(a) => Name::channel(a)
                .map(|c| {
                    vec![Cmd::Who {
                        channel: Some(c),
                        show: true,
                    }]
                })
                .map_err(|e| e.to_string()),
            None => Ok(vec![Cmd::Who {
                channel: None,
                show: true,
            }]),
        },
        "split" => {
            app.split = match arg {
                Some("h" | "horizontal") => Split::Horizontal,
                _ => Split::Vertical,
            };
            let room = app.focused_pane().room;
            app.panes.insert(app.focus + 1, Pane::new(room));
            app.focus += 1;
            Ok(Vec::new())
        }
        "close" => {
            if app.panes.len() > 1 {
                app.panes.remove(app.focus);
                app.focus = app.focus.min(app.panes.len() - 1);
                Ok(Vec::new())
            } else {
                Err("the last pane stays open".into())
            }
        }
        "help" => {
            app.overlay = Some(Overlay::Help);
            Ok(Vec::new())
        }
        "quit" | "exit" => {
            app.quit = true;
            Ok(Vec::new())
        }
        "bell" => match (arg.and_then(BellMode::parse), focused_channel) {
            (Some(mode), Some(channel)) => {
                app.settings.bells.insert(channel.to_string(), mode);
                let room = app.focused_pane().room;
                note(
                    app,
                    room,
                    EntryKind::Note,
                    format!("bell for #{channel}: {}", arg.unwrap_or_default()),
                    now_ms(),
                );
                Ok(Vec::new())
            }
            (None, _) => Err("usage: /bell all|mentions|none".into()),
            (_, None) => Err("the bell is set per channel: switch to one first".into()),
        },
        "autonomy" | "perm" => set_autonomy(app, arg, words.next(), focused_channel),
        other => Err(format!("unknown command /{other}; /help lists them")),
    };
    match result {
        Ok(cmds) => cmds,
        Err(message) => {
            error(app, message);
            Vec::new()
        }
    }
}

fn set_autonomy(
    app: &mut App,
    agent: Option<&str>,
    level: Option<&str>,
    channel: Option<Name>,
) -> Result<Vec<Cmd>, String> {
    let usage = || "usage: /autonomy AGENT mute|notify|converse|act (in a channel)".to_owned();
    let (Some(agent), Some(level)) = (agent, level) else {
        return Err(usage());
    };
    let level = Autonomy::parse(level).ok_or_else(usage)?;
    let path = app
        .agents
        .keys()
        .find(|p| p.to_string() == agent || p.session.as_str() == agent)
        .cloned()
        .ok_or_else(|| format!("no agent of yours called `{agent}` is online"))?;
    autonomy_cmd(app, path, channel, level)
}

/// Tells one of my agents its level in `channel`, showing the change at once.
fn autonomy_cmd(
    app: &mut App,
    agent: SessionPath,
    channel: Option<Name>,
    level: Autonomy,
) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or("autonomy is set per channel: switch to one first")?;
    if let Some(info) = app.agents.get_mut(&agent) {
        info.levels.insert(channel.clone(), level);
    }
    Ok(vec![Cmd::Relay {
        to: Some(agent),
        audience: Audience::Agents,
        body: RelayBody::SetAutonomy { channel, level },
    }])
}

/// Completes the word before the cursor: commands, then channel names, then people.
fn complete(app: &mut App) {
    let ratatui_textarea::DataCursor(row, col) = app.input.cursor();
    let line = app.input.lines().get(row).cloned().unwrap_or_default();
    let byte_col = line.char_indices().nth(col).map_or(line.len(), |(i, _)| i);
    let before = &line[..byte_col];

    let completion = match app.completion.take() {
        Some(c) => c,
        None => {
            let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            let word = &before[start..];
            let candidates = candidates(app, word, start == 0 && row == 0);
            if candidates.is_empty() {
                return;
            }
            Completion {
                start,
                candidates,
                next: 0,
            }
        }
    };
    let choice = completion.candidates[completion.next % completion.candidates.len()].clone();
    let mut new_line = line[..completion.start].to_owned();
    new_line.push_str(&choice);
    if completion.candidates.len() == 1 {
        new_line.push(' ');
    }
    let cursor_chars = new_line.chars().count();
    new_line.push_str(&line[byte_col..]);
    let mut lines: Vec<String> = app.input.lines().to_vec();
    lines[row] = new_line;
    let mut input = TextArea::new(lines);
    input.set_placeholder_text("Type a message, or /help");
    input.move_cursor(CursorMove::Jump(row as u16, cursor_chars as u16));
    app.input = input;
    app.completion = Some(Completion {
        next: completion.next + 1,
        ..completion
    });
}

fn candidates(app: &App, word: &str, first_word: bool) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut out: Vec<String> = if first_word && word.starts_with('/') {
        COMMANDS.iter().map(|c| (*c).to_owned()).collect()
    } else if let Some(rest) = word.strip_prefix('#') {
        let _ = rest;
        app.known_channels.iter().map(|c| format!("#{c}")).collect()
    } else if word.starts_with('@') {
        people(app).into_iter().map(|p| format!("@{p}")).collect()
    } else {
        let mut all: Vec<String> = app.known_channels.iter().map(ToString::to_string).collect();
        all.extend(people(app));
        all
    };
    out.retain(|c| c.to_lowercase().starts_with(&lower) && c.len() > word.len());
    out.sort();
    out.dedup();
    out
}

/// Users and session paths in the focused room, for completion.
fn people(app: &App) -> Vec<String> {
    let room = app.focused_room();
    let mut out: Vec<String> = room.members.iter().map(ToString::to_string).collect();
    out.extend(room.online.iter().map(|s| s.path.to_string()));
    out.extend(app.agents.keys().map(ToString::to_string));
    out
}

#[cfg(test)]
pub(crate) mod tests;
