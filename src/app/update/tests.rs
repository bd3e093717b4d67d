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
    Audience, Autonomy, ChannelAutonomy, ChannelInfo, ChatMessage, PresenceChange, RelayBody,
    SessionInfo, SessionKind, Visibility, WhisperMessage,
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
        channel: name(channel),
        seq,
        ts: 1_764_000_000_000 + seq as i64 * 60_000,
        from: path(from),
        text: text.into(),
    }
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
        update(
            &mut app,
            Msg::Done(Reply::Joined(JoinReceipt {
                channel: ChannelInfo {
                    name: name(channel),
                    visibility: Visibility::Public,
                    member: true,
                    last_seq: 0,
                },
                read_seq: 0,
            })),
        );
    }
    app
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
fn history(app: &mut App, seqs: std::ops::RangeInclusive<u64>, more: bool, older: bool) {
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

fn room<'a>(app: &'a App, channel: &str) -> &'a Room {
    &app.rooms[app.room_index(&RoomId::Channel(name(channel))).unwrap()]
}

#[test]
fn first_connect_lists_channels_and_joins_the_member_ones() {
    let mut app = App::new(
        Settings::defaults(),
        "ws://x".into(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    let cmds = update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    assert!(cmds.contains(&Cmd::ListChannels(Listing::Startup)));
    let info = |n: &str, member| ChannelInfo {
        name: name(n),
        visibility: Visibility::Public,
        member,
        last_seq: 3,
    };
    let cmds = update(
        &mut app,
        Msg::Done(Reply::Channels {
            list: vec![info("general", true), info("other", false)],
            why: Listing::Startup,
        }),
    );
    assert_eq!(cmds, [Cmd::Join(name("general"))]);
    // A reconnect does not list again: the link re-joins on its own.
    update(
        &mut app,
        Msg::Link(LinkEvent::Disconnected {
            reason: "x".into(),
            retry_in: Duration::from_secs(1),
        }),
    );
    let cmds = update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    assert!(!cmds.contains(&Cmd::ListChannels(Listing::Startup)));
}

#[test]
fn unread_counts_and_mentions_grow_only_out_of_view() {
    let mut app = connected();
    assert_eq!(app.focused_room().id, RoomId::Channel(name("general")));
    live(&mut app, message("general", 1, "bob/desk/cli", "in view"));
    assert_eq!(room(&app, "general").unread, 0);
    live(&mut app, message("ops", 1, "bob/desk/cli", "elsewhere"));
    let cmds = live(&mut app, message("ops", 2, "bob/desk/cli", "hey @alice"));
    assert_eq!(room(&app, "ops").unread, 2);
    assert_eq!(room(&app, "ops").mentions, 1);
    assert_eq!(cmds, [Cmd::Bell], "a mention rings with the default bell");
    // My own messages never count.
    live(
        &mut app,
        message("ops", 3, "alice/laptop/tui", "mine @alice"),
    );
    assert_eq!(room(&app, "ops").unread, 2);
    // Duplicates (after a reconnect) count once.
    live(&mut app, message("ops", 2, "bob/desk/cli", "hey @alice"));
    assert_eq!(room(&app, "ops").unread, 2);

    // Alt-A goes to the mention first and clears the counts, leaving the marker.
    key_with(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
    assert_eq!(
        (room(&app, "ops").unread, room(&app, "ops").mentions),
        (0, 0)
    );
    assert_eq!(room(&app, "ops").marker, Some(0));
}

#[test]
fn read_positions_advance_for_rooms_in_view_once_per_tick() {
    let mut app = connected();
    live(&mut app, message("general", 1, "bob/desk/cli", "a"));
    live(&mut app, message("general", 2, "bob/desk/cli", "b"));
    live(&mut app, message("ops", 1, "bob/desk/cli", "c"));
    let cmds = update(&mut app, Msg::Tick);
    assert_eq!(
        cmds,
        [Cmd::MarkRead {
            channel: name("general"),
            seq: 2
        }]
    );
    assert!(update(&mut app, Msg::Tick).is_empty());
}

#[test]
fn bells_follow_the_per_channel_setting() {
    let mut app = connected();
    type_text(&mut app, "/bell all");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        live(&mut app, message("general", 1, "bob/desk/cli", "plain")),
        [Cmd::Bell]
    );
    key_with(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    type_text(&mut app, "/bell none");
    key(&mut app, KeyCode::Enter);
    assert!(live(&mut app, message("ops", 1, "bob/desk/cli", "@alice")).is_empty());
}

#[test]
fn enter_sends_alt_enter_breaks_the_line_and_commands_run() {
    let mut app = connected();
    type_text(&mut app, "hello");
    key_with(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    type_text(&mut app, "world");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        [Cmd::Send {
            channel: name("general"),
            text: "hello\nworld".into(),
            id: 1
        }]
    );
    assert!(app.input.is_empty());

    type_text(&mut app, "/join #random");
    assert_eq!(key(&mut app, KeyCode::Enter), [Cmd::Join(name("random"))]);
    update(
        &mut app,
        Msg::Done(Reply::Joined(JoinReceipt {
            channel: ChannelInfo {
                name: name("random"),
                visibility: Visibility::Public,
                member: true,
                last_seq: 0,
            },
            read_seq: 0,
        })),
    );
    assert_eq!(
        app.focused_room().id,
        RoomId::Channel(name("random")),
        "a joined channel comes into view"
    );
    type_text(&mut app, "/msg bob/desk/cli psst there");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Whisper {
            to: path("bob/desk/cli"),
            text: "psst there".into(),
            id: 2
        }]
    );
    assert_eq!(app.focused_room().id, RoomId::Whisper(path("bob/desk/cli")));
    type_text(&mut app, "/create lab private");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Create(name("lab"), Visibility::Private)]
    );
    type_text(&mut app, "/msg bob/desk/cli");
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "/add carol");
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "members belong to a channel"
    );
    key_with(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL);
    type_text(&mut app, "/add carol");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Member {
            channel: name("random"),
            user: Name::user("carol").unwrap(),
            add: true
        }]
    );
    type_text(&mut app, "/who general");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Who {
            channel: Some(name("general")),
            show: true
        }]
    );
    type_text(&mut app, "/nope");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let last = app.focused_room().entries.back().unwrap();
    assert_eq!(last.kind, EntryKind::Error);
    assert!(last.text.contains("unknown command /nope"));
}

#[test]
fn server_errors_show_inline_in_words() {
    let mut app = connected();
    update(
        &mut app,
        Msg::Done(Reply::Failed {
            context: "cannot join #x".into(),
            error: "there is no channel #x".into(),
        }),
    );
    let last = app.focused_room().entries.back().unwrap();
    assert_eq!(last.text, "cannot join #x: there is no channel #x");
    assert_eq!(last.kind, EntryKind::Error);
}

#[test]
fn up_and_down_on_an_empty_box_walk_the_input_history() {
    let mut app = connected();
    for text in ["one", "two"] {
        type_text(&mut app, text);
        key(&mut app, KeyCode::Enter);
    }
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["two"]);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["one"]);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["one"]);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input.lines(), ["two"]);
    key(&mut app, KeyCode::Down);
    assert!(app.input.is_empty());
}

#[test]
fn tab_completes_commands_channels_and_names() {
    let mut app = connected();
    update(
        &mut app,
        Msg::Done(Reply::Who {
            channel: Some(name("general")),
            report: WhoReport {
                sessions: vec![SessionInfo {
                    path: path("bob/desk/api"),
                    kind: SessionKind::Agent,
                }],
                members: vec![Name::user("alice").unwrap(), Name::user("bob").unwrap()],
            },
            show: true,
        }),
    );
    let said = &app.focused_room().entries.back().unwrap().text;
    assert_eq!(
        said,
        "#general: members alice, bob; online bob/desk/api (agent)"
    );
    type_text(&mut app, "/jo");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.lines(), ["/join "]);
    type_text(&mut app, "#o");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.lines(), ["/join #ops "]);
    app.input = TextArea::default();
    type_text(&mut app, "hi @b");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.lines(), ["hi @bob"]);
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        app.input.lines(),
        ["hi @bob/desk/api"],
        "a second Tab cycles"
    );
}

#[test]
fn scrolling_past_the_oldest_loaded_message_pages_older_history() {
    let mut app = connected();
    history(&mut app, 51..=60, true, false);
    assert!(!room(&app, "general").older_exhausted);
    // The view found the oldest entry on screen.
    app.panes[0].at_top.set(true);
    let cmds = key(&mut app, KeyCode::PageUp);
    assert_eq!(
        cmds,
        [Cmd::History {
            channel: name("general"),
            before: Some(51),
            after: None
        }]
    );
    // One request at a time.
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    history(&mut app, 41..=50, false, true);
    let r = room(&app, "general");
    assert_eq!(
        (r.oldest_seq(), r.newest_seq(), r.entries.len()),
        (Some(41), Some(60), 20)
    );
    assert!(r.older_exhausted);
    assert!(key(&mut app, KeyCode::PageUp).is_empty());

    // New messages while scrolled up are counted, End goes back down.
    live(&mut app, message("general", 61, "bob/desk/cli", "new"));
    assert_eq!(app.panes[0].unseen, 1);
    key(&mut app, KeyCode::End);
    assert_eq!((app.panes[0].scroll, app.panes[0].unseen), (0, 0));
}

#[test]
fn scrolling_settles_at_the_top_the_view_found() {
    let mut app = connected();
    for _ in 0..5 {
        key(&mut app, KeyCode::PageUp);
    }
    // The last draw found the whole room fits 3 lines of scrolling.
    app.panes[0].max_scroll.set(Some(3));
    key(&mut app, KeyCode::PageUp);
    assert!(app.panes[0].scroll <= 3 + app.panes[0].viewport.get() as usize);
    update(&mut app, Msg::Tick);
    assert_eq!(
        app.panes[0].scroll, 3,
        "clamped before anything else happens"
    );
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.panes[0].scroll, 0, "PageDown moves at once");
}

#[test]
fn rooms_stay_bounded() {
    let mut app = connected();
    for seq in 1..=(MAX_LOADED as u64 + 10) {
        live(&mut app, message("general", seq, "bob/desk/cli", "x"));
    }
    let r = room(&app, "general");
    assert_eq!(r.entries.len(), MAX_LOADED);
    assert_eq!(r.oldest_seq(), Some(11));
    assert!(!r.older_exhausted, "the dropped ones can be paged in again");
}

#[test]
fn search_finds_older_then_newer_matches() {
    let mut app = connected();
    for (seq, text) in [(1, "deploy started"), (2, "lunch"), (3, "deploy done")] {
        live(&mut app, message("general", seq, "bob/desk/cli", text));
    }
    key_with(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    type_text(&mut app, "DEPLOY");
    key(&mut app, KeyCode::Enter);
    let hit = |app: &App| {
        app.search
            .as_ref()
            .unwrap()
            .hit
            .map(|i| app.focused_room().entries[i].text.clone())
    };
    assert_eq!(hit(&app).as_deref(), Some("deploy done"));
    key(&mut app, KeyCode::Enter);
    assert_eq!(hit(&app).as_deref(), Some("deploy started"));
    key(&mut app, KeyCode::Enter);
    assert!(app.search.as_ref().unwrap().failed);
    key(&mut app, KeyCode::Down);
    assert_eq!(hit(&app).as_deref(), Some("deploy done"));
    key(&mut app, KeyCode::Esc);
    assert!(app.search.is_none());
}

#[test]
fn permission_requests_queue_and_one_key_answers_the_oldest() {
    let mut app = connected();
    let agent = path("alice/laptop/api");
    let request = |id: &str| {
        Msg::Link(LinkEvent::Relay {
            from: agent.clone(),
            from_kind: SessionKind::Agent,
            body: RelayBody::PermissionRequest {
                request_id: id.into(),
                tool_name: "Bash".into(),
                description: "run tests".into(),
                input_preview: "{}".into(),
                expires_in_ms: 300_000,
            },
        })
    };
    assert_eq!(update(&mut app, request("aaaaa")), [Cmd::Bell]);
    update(&mut app, request("bbbbb"));
    assert_eq!(app.pending_approvals().count(), 2);
    let cmds = key_with(&mut app, KeyCode::Char('y'), KeyModifiers::ALT);
    assert_eq!(
        cmds,
        [Cmd::Relay {
            to: Some(agent.clone()),
            audience: Audience::Agents,
            body: RelayBody::PermissionVerdict {
                request_id: "aaaaa".into(),
                allow: true
            },
        }]
    );
    assert_eq!(app.pending_approvals().count(), 1);
    update(
        &mut app,
        Msg::Link(LinkEvent::Relay {
            from: agent.clone(),
            from_kind: SessionKind::Agent,
            body: RelayBody::PermissionAnswered {
                request_id: "aaaaa".into(),
                allow: true,
                by: path("alice/desk/tui"),
            },
        }),
    );
    let answered = app.approvals[0].answer.clone().unwrap();
    assert_eq!((answered.0, answered.1), (true, path("alice/desk/tui")));
    // A request relayed by a human session is not an agent's request.
    update(
        &mut app,
        Msg::Link(LinkEvent::Relay {
            from: path("alice/desk/tui"),
            from_kind: SessionKind::Human,
            body: RelayBody::PermissionRequest {
                request_id: "ccccc".into(),
                tool_name: "x".into(),
                description: "x".into(),
                input_preview: "x".into(),
                expires_in_ms: 300_000,
            },
        }),
    );
    assert_eq!(app.approvals.len(), 2);
    let cmds = key_with(&mut app, KeyCode::Char('n'), KeyModifiers::ALT);
    assert!(matches!(
        &cmds[..],
        [Cmd::Relay {
            body: RelayBody::PermissionVerdict { allow: false, .. },
            ..
        }]
    ));
}

#[test]
fn autonomy_reports_show_and_the_command_changes_my_agent() {
    let mut app = connected();
    let agent = path("alice/laptop/api");
    update(
        &mut app,
        Msg::Link(LinkEvent::Relay {
            from: agent.clone(),
            from_kind: SessionKind::Agent,
            body: RelayBody::AutonomyReport {
                levels: vec![ChannelAutonomy {
                    channel: name("general"),
                    level: Autonomy::Converse,
                }],
                default: Autonomy::Notify,
                not_applicable: false,
            },
        }),
    );
    assert_eq!(
        app.agents[&agent].level(&name("general")),
        Autonomy::Converse
    );
    assert_eq!(app.agents[&agent].level(&name("ops")), Autonomy::Notify);
    type_text(&mut app, "/autonomy api act");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        [Cmd::Relay {
            to: Some(agent.clone()),
            audience: Audience::Agents,
            body: RelayBody::SetAutonomy {
                channel: name("general"),
                level: Autonomy::Act
            },
        }]
    );
    // The same from the agents view: select the agent, press 2 (notify).
    key(&mut app, KeyCode::F(2));
    key(&mut app, KeyCode::Down);
    let cmds = key(&mut app, KeyCode::Char('2'));
    assert_eq!(
        cmds,
        [Cmd::Relay {
            to: Some(agent.clone()),
            audience: Audience::Agents,
            body: RelayBody::SetAutonomy {
                channel: name("general"),
                level: Autonomy::Notify
            },
        }]
    );
    assert_eq!(app.agents[&agent].level(&name("general")), Autonomy::Notify);
    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "/autonomy ghost act");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(
        app.focused_room()
            .entries
            .back()
            .unwrap()
            .text
            .contains("no agent of yours")
    );
    update(
        &mut app,
        Msg::Link(LinkEvent::Presence(crate::net::protocol::PresenceEvent {
            channel: name("general"),
            session: SessionInfo {
                path: agent.clone(),
                kind: SessionKind::Agent,
            },
            change: PresenceChange::Offline,
        })),
    );
    assert!(app.agents.is_empty(), "an agent that left is forgotten");
}

#[test]
fn whispers_open_a_conversation_that_counts_as_a_mention() {
    let mut app = connected();
    let cmds = update(
        &mut app,
        Msg::Link(LinkEvent::Whisper(WhisperMessage {
            from: path("bob/desk/cli"),
            to: path("alice/laptop/tui"),
            ts: 0,
            text: "psst".into(),
        })),
    );
    assert_eq!(cmds, [Cmd::Bell]);
    let index = app
        .room_index(&RoomId::Whisper(path("bob/desk/cli")))
        .unwrap();
    assert_eq!((app.rooms[index].unread, app.rooms[index].mentions), (1, 1));
}

#[test]
fn panes_split_cycle_and_close() {
    let mut app = connected();
    type_text(&mut app, "/split h");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        (app.panes.len(), app.focus, app.split),
        (2, 1, Split::Stacked)
    );
    key_with(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_ne!(app.panes[0].room, app.panes[1].room);
    key_with(&mut app, KeyCode::Char('w'), KeyModifiers::CONTROL);
    assert_eq!(app.focus, 0);
    type_text(&mut app, "/close");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.panes.len(), 1);
    type_text(&mut app, "/close");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.panes.len(), 1, "the last pane stays");
}

#[test]
fn help_opens_with_f1_or_question_mark_on_an_empty_box() {
    let mut app = connected();
    key(&mut app, KeyCode::F(1));
    assert_eq!(app.overlay, Some(Overlay::Help { scroll: 0 }));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(app.overlay, Some(Overlay::Help { scroll: 0 }));
    key(&mut app, KeyCode::Char('x'));
    type_text(&mut app, "why?");
    assert_eq!(app.overlay, None, "? inside text is text");
    assert_eq!(app.input.lines(), ["why?"]);
}

#[test]
fn typing_offline_is_kept_and_sent_through_the_link_queue() {
    let mut app = connected();
    update(
        &mut app,
        Msg::Link(LinkEvent::Disconnected {
            reason: "refused".into(),
            retry_in: Duration::from_secs(3),
        }),
    );
    assert!(matches!(app.connection, Connection::Reconnecting { .. }));
    type_text(&mut app, "still here");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Send {
            channel: name("general"),
            text: "still here".into(),
            id: 1
        }]
    );
}

#[test]
fn pasted_lines_keep_their_breaks_and_never_send_a_bare_cr() {
    let mut app = connected();
    update(&mut app, Msg::Paste("A\rB\r\nC".into()));
    type_text(&mut app, "\rD");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Send {
            channel: name("general"),
            text: "A\nB\nC\nD".into(),
            id: 1
        }]
    );
}

#[test]
fn a_new_message_lands_below_the_notes_that_came_before_it() {
    let mut app = connected();
    live(&mut app, message("general", 1, "bob/desk/cli", "first"));
    let index = app.room_index(&RoomId::Channel(name("general"))).unwrap();
    let at = |seq: u64| message("general", seq, "bob/desk/cli", "").ts;
    update_at(&mut app, Msg::Tick, at(1) + 1);
    note(&mut app, index, EntryKind::Note, "between");
    live(&mut app, message("general", 2, "bob/desk/cli", "second"));
    // An older message fetched from history goes above the note, by time.
    let mut old = message("general", 0, "bob/desk/cli", "zeroth");
    old.seq = 0;
    live(&mut app, old);
    let texts: Vec<&str> = room(&app, "general")
        .entries
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    let tail: Vec<&str> = texts[texts.len() - 4..].to_vec();
    assert_eq!(tail, ["zeroth", "first", "between", "second"]);
}

#[test]
fn typed_messages_show_at_once_marked_pending_and_none_is_dropped() {
    let mut app = connected();
    let mut cmds = Vec::new();
    for n in 0..2_000 {
        type_text(&mut app, &format!("m{n}"));
        cmds.extend(key(&mut app, KeyCode::Enter));
    }
    assert_eq!(cmds.len(), 2_000, "every one goes to the send queue");
    let pending = |app: &App| {
        room(app, "general")
            .entries
            .iter()
            .filter(|e| matches!(e.delivery, Delivery::Pending { .. }))
            .count()
    };
    assert_eq!(pending(&app), 2_000);
    let last = room(&app, "general").entries.back().unwrap();
    assert_eq!(
        (last.text.as_str(), last.from.clone()),
        ("m1999", Some(path("alice/laptop/tui")))
    );

    // The acknowledgement turns the first into the stored message, in its place by seq.
    update(
        &mut app,
        Msg::Done(Reply::Sent {
            channel: name("general"),
            id: 1,
            seq: 7,
            ts: NOW,
        }),
    );
    let r = room(&app, "general");
    let stored = r.entries.iter().find(|e| e.text == "m0").unwrap();
    assert_eq!((stored.seq, &stored.delivery), (Some(7), &Delivery::Done));
    assert_eq!(pending(&app), 1_999);

    // The echo can come before the acknowledgement: it replaces the entry, the ack is a no-op.
    live(&mut app, message("general", 8, "alice/laptop/tui", "m1"));
    update(
        &mut app,
        Msg::Done(Reply::Sent {
            channel: name("general"),
            id: 2,
            seq: 8,
            ts: NOW,
        }),
    );
    let r = room(&app, "general");
    assert_eq!(r.entries.iter().filter(|e| e.text == "m1").count(), 1);
    assert_eq!(pending(&app), 1_998);

    // A failure keeps the text, marked with the reason.
    update(
        &mut app,
        Msg::Done(Reply::NotSent {
            room: RoomId::Channel(name("general")),
            id: 3,
            error: "the link is closed".into(),
        }),
    );
    let failed = room(&app, "general")
        .entries
        .iter()
        .find(|e| e.text == "m2")
        .unwrap();
    assert_eq!(
        failed.delivery,
        Delivery::Failed {
            id: 3,
            reason: "the link is closed".into()
        }
    );
}

#[test]
fn a_whisper_shows_pending_until_the_server_takes_it() {
    let mut app = connected();
    type_text(&mut app, "/msg bob/desk/cli psst");
    let cmds = key(&mut app, KeyCode::Enter);
    let [Cmd::Whisper { id, .. }] = cmds[..] else {
        panic!("{cmds:?}")
    };
    let entry = |app: &App| app.focused_room().entries.back().unwrap().delivery.clone();
    assert_eq!(entry(&app), Delivery::Pending { id });
    update(
        &mut app,
        Msg::Done(Reply::Whispered {
            to: path("bob/desk/cli"),
            id,
        }),
    );
    assert_eq!(entry(&app), Delivery::Done);
}

#[test]
fn a_reconnect_asks_again_who_is_in_each_channel() {
    let mut app = connected();
    update(
        &mut app,
        Msg::Link(LinkEvent::Disconnected {
            reason: "server restarted".into(),
            retry_in: Duration::from_secs(1),
        }),
    );
    let cmds = update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    for channel in ["general", "ops"] {
        assert!(
            cmds.contains(&Cmd::Who {
                channel: Some(name(channel)),
                show: false
            }),
            "{cmds:?}"
        );
    }
    // The answer replaces what was shown before the restart.
    update(
        &mut app,
        Msg::Done(Reply::Who {
            channel: Some(name("general")),
            report: WhoReport {
                sessions: vec![SessionInfo {
                    path: path("bob/desk/tail"),
                    kind: SessionKind::Human,
                }],
                members: vec![Name::user("bob").unwrap()],
            },
            show: false,
        }),
    );
    assert_eq!(room(&app, "general").online[0].path, path("bob/desk/tail"));
}

#[test]
fn a_program_agent_shows_no_level_and_takes_no_autonomy_command() {
    let mut app = connected();
    let bot = path("alice/laptop/bot");
    update(
        &mut app,
        Msg::Link(LinkEvent::Relay {
            from: bot.clone(),
            from_kind: SessionKind::Agent,
            body: RelayBody::AutonomyReport {
                levels: Vec::new(),
                default: Autonomy::Notify,
                not_applicable: true,
            },
        }),
    );
    assert!(!app.agents[&bot].applies);
    type_text(&mut app, "/autonomy bot act");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let said = &app.focused_room().entries.back().unwrap().text;
    assert!(said.contains("autonomy does not apply"), "{said}");
    key(&mut app, KeyCode::F(2));
    assert!(key(&mut app, KeyCode::Char('4')).is_empty());
}

#[test]
fn a_request_past_its_time_may_have_been_answered_in_the_terminal() {
    let mut app = connected();
    let agent = path("alice/laptop/api");
    let request = Msg::Link(LinkEvent::Relay {
        from: agent.clone(),
        from_kind: SessionKind::Agent,
        body: RelayBody::PermissionRequest {
            request_id: "aaaaa".into(),
            tool_name: "Bash".into(),
            description: "run tests".into(),
            input_preview: "{}".into(),
            expires_in_ms: 60_000,
        },
    });
    update(&mut app, request);
    assert_eq!(app.pending_approvals().count(), 1);
    // Offered again (this session reconnected): still one request.
    let again = Msg::Link(LinkEvent::Relay {
        from: agent.clone(),
        from_kind: SessionKind::Agent,
        body: RelayBody::PermissionRequest {
            request_id: "aaaaa".into(),
            tool_name: "Bash".into(),
            description: "run tests".into(),
            input_preview: "{}".into(),
            expires_in_ms: 30_000,
        },
    });
    assert!(update_at(&mut app, again, NOW + 10_000).is_empty());
    assert_eq!(app.approvals.len(), 1);
    assert_eq!(app.approvals[0].expires, NOW + 40_000);

    // The time passes: no longer waiting, and a verdict says it came too late.
    update_at(&mut app, Msg::Tick, NOW + 40_000);
    assert_eq!(app.pending_approvals().count(), 0);
    assert!(app.approvals[0].lapsed(app.now_ms));
    let cmds = update_at(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::F(2), KeyModifiers::NONE)),
        NOW + 41_000,
    );
    assert!(cmds.is_empty());
    let cmds = update_at(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE)),
        NOW + 41_000,
    );
    assert!(cmds.is_empty(), "nothing is sent for an expired request");
    let said = &app.focused_room().entries.back().unwrap().text;
    assert!(
        said.contains("too late") && said.contains("nothing was allowed"),
        "{said}"
    );
    assert!(
        said.contains("may have been answered in the terminal"),
        "{said}"
    );
}

fn info(n: &str, member: bool, last_seq: u64) -> ChannelInfo {
    ChannelInfo {
        name: name(n),
        visibility: Visibility::Public,
        member,
        last_seq,
    }
}

#[test]
fn list_shows_every_channel_with_visibility_membership_and_messages() {
    let mut app = connected();
    type_text(&mut app, "/list");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::ListChannels(Listing::Show)]
    );
    let cmds = update(
        &mut app,
        Msg::Done(Reply::Channels {
            list: vec![
                info("general", true, 3),
                info("lab", true, 1),
                info("random", false, 0),
            ],
            why: Listing::Show,
        }),
    );
    assert!(cmds.is_empty(), "listing joins nothing");
    let said = &app.focused_room().entries.back().unwrap().text;
    assert_eq!(
        said,
        "3 channels:\n  #general public   joined 3 messages\n  #lab     public   member 1 message\n  #random  public   -      no messages"
    );
}

#[test]
fn tab_knows_channels_created_after_connect() {
    let mut app = connected();
    // A while later, typing `#` fetches the names (at most once per few seconds).
    let later = NOW + 60_000;
    update_at(&mut app, Msg::Tick, later);
    type_text(&mut app, "/join ");
    let cmds = update_at(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('#'), KeyModifiers::NONE)),
        later,
    );
    assert_eq!(cmds, [Cmd::ListChannels(Listing::Refresh)]);
    type_text(&mut app, "ne");
    update(
        &mut app,
        Msg::Done(Reply::Channels {
            list: vec![info("general", true, 0), info("newer", false, 0)],
            why: Listing::Refresh,
        }),
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.lines(), ["/join #newer "]);
}

#[test]
fn leave_in_a_whisper_closes_it() {
    let mut app = connected();
    type_text(&mut app, "/msg bob/desk/cli");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.focused_room().id, RoomId::Whisper(path("bob/desk/cli")));
    type_text(&mut app, "/leave");
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "nothing to tell the server"
    );
    assert!(
        app.room_index(&RoomId::Whisper(path("bob/desk/cli")))
            .is_none()
    );
    assert_eq!(app.focused_room().id, RoomId::Home);
}

#[test]
fn msg_user_finds_their_one_online_person_or_names_the_choices() {
    let mut app = connected();
    type_text(&mut app, "/msg bob hi there");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::FindUser {
            user: Name::user("bob").unwrap(),
            text: Some("hi there".into())
        }]
    );
    let session = |p: &str, kind| SessionInfo {
        path: path(p),
        kind,
    };
    let found = |app: &mut App, sessions: Vec<SessionInfo>| {
        update(
            app,
            Msg::Done(Reply::UserSessions {
                user: Name::user("bob").unwrap(),
                sessions,
                text: Some("hi there".into()),
            }),
        )
    };
    let cmds = found(
        &mut app,
        vec![
            session("bob/desk/tui", SessionKind::Human),
            session("bob/desk/api", SessionKind::Agent),
            session("carol/x/tui", SessionKind::Human),
        ],
    );
    assert_eq!(
        cmds,
        [Cmd::Whisper {
            to: path("bob/desk/tui"),
            text: "hi there".into(),
            id: 1
        }]
    );
    assert_eq!(app.focused_room().id, RoomId::Whisper(path("bob/desk/tui")));

    let last = |app: &App| app.focused_room().entries.back().unwrap().text.clone();
    assert!(
        found(
            &mut app,
            vec![
                session("bob/desk/tui", SessionKind::Human),
                session("bob/laptop/tui", SessionKind::Human),
            ],
        )
        .is_empty()
    );
    assert_eq!(
        last(&app),
        "bob is online at bob/desk/tui, bob/laptop/tui; /msg one of them"
    );
    assert!(found(&mut app, vec![session("bob/desk/api", SessionKind::Agent)]).is_empty());
    assert_eq!(
        last(&app),
        "bob has no person online, only: bob/desk/api; /msg one of them"
    );
    assert!(found(&mut app, Vec::new()).is_empty());
    assert_eq!(last(&app), "bob is not online");
}

#[test]
fn shell_keys_ctrl_u_clears_to_the_line_start_and_ctrl_z_undoes() {
    let mut app = connected();
    type_text(&mut app, "a draft to drop");
    key_with(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert!(app.input.is_empty(), "{:?}", app.input.lines());
    key_with(&mut app, KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(app.input.lines(), ["a draft to drop"]);
}

#[test]
fn ctrl_c_drops_a_draft_first_and_quits_from_an_empty_box() {
    let mut app = connected();
    type_text(&mut app, "half a thought");
    key_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(app.input.is_empty());
    assert!(!app.quit);
    key_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(app.quit);
}

#[test]
fn alt_m_gives_the_mouse_to_the_terminal_and_back() {
    let mut app = connected();
    assert_eq!(
        key_with(&mut app, KeyCode::Char('m'), KeyModifiers::ALT),
        [Cmd::MouseCapture(false)]
    );
    assert!(!app.mouse_capture);
    assert_eq!(
        key_with(&mut app, KeyCode::Char('m'), KeyModifiers::ALT),
        [Cmd::MouseCapture(true)]
    );
}

#[test]
fn a_click_on_the_sidebar_shows_that_room() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut app = connected();
    // As drawn: the sidebar's rows from the top, one room each (home, #general, #ops).
    app.sidebar_area
        .set(ratatui::layout::Rect::new(0, 0, 14, 10));
    let click = |column, row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut app, click(3, 2));
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
    update(&mut app, click(3, 0));
    assert_eq!(app.focused_room().id, RoomId::Home);
    update(&mut app, click(3, 7));
    update(&mut app, click(30, 1));
    assert_eq!(
        app.focused_room().id,
        RoomId::Home,
        "below the rooms or outside: nothing"
    );
}

#[test]
fn a_taken_name_at_zero_set_up_is_replaced_by_one_typed_in_the_tui() {
    let mut app = App::new(
        Settings::defaults(),
        "ws://x".into(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    app.claiming = Some((Name::user("alice").unwrap(), true));
    update(
        &mut app,
        Msg::Link(LinkEvent::Closed {
            reason: "the user name `alice` is taken; add this machine from one already enrolled (`conclave machine add`) or pick another name".into(),
        }),
    );
    assert_eq!(app.name_taken.as_deref(), Some("alice"));
    let said = &app.focused_room().entries.back().unwrap().text;
    assert!(
        said.contains("`alice` is taken") && said.contains("type another name"),
        "{said}"
    );
    type_text(&mut app, "not a name!");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.name_taken.is_some(), "asked again");
    type_text(&mut app, "alice2");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Register(Name::user("alice2").unwrap())]
    );
    assert_eq!(app.name_taken, None);
    assert_eq!(app.connection, Connection::Connecting);
    update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("alice2/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    let said = &app.rooms[0].entries.back().unwrap().text;
    assert_eq!(said, "registered as `alice2` on ws://x");
}

#[test]
fn a_name_picked_without_user_set_is_said() {
    let mut app = App::new(
        Settings::defaults(),
        "ws://x".into(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    app.claiming = Some((Name::user("me").unwrap(), false));
    update(
        &mut app,
        Msg::Link(LinkEvent::Connected {
            path: path("me/laptop/tui"),
            server_id: "s".into(),
            admin: false,
        }),
    );
    let said = &app.rooms[0].entries.back().unwrap().text;
    assert_eq!(
        said,
        "registered as `me` on ws://x ($USER is not set, so this name was picked for you)"
    );
}

#[test]
fn alt_a_opens_at_the_new_marker_not_the_bottom() {
    let mut app = connected();
    for seq in 1..=30 {
        live(&mut app, message("ops", seq, "bob/desk/cli", "x"));
    }
    // As the pane was last drawn: 10 rows, 80 columns.
    app.panes[0].viewport.set(10);
    app.panes[0].width.set(80);
    key_with(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
    // 30 one-line messages and the marker line: the marker at the top of 10 rows.
    assert_eq!(app.panes[0].scroll, 21);
}

#[test]
fn the_channel_shown_last_comes_back_into_view_once_joined() {
    let mut app = App::new(
        Settings::defaults(),
        "ws://x".into(),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    app.focus_on_join = Some(name("ops"));
    for channel in ["general", "ops", "random"] {
        update(
            &mut app,
            Msg::Done(Reply::Joined(JoinReceipt {
                channel: info(channel, true, 0),
                read_seq: 0,
            })),
        );
    }
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
}

#[test]
fn split_words_v_side_by_side_h_stacked() {
    let mut app = connected();
    type_text(&mut app, "/split v");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.split, Split::SideBySide);
    type_text(&mut app, "/split -h");
    key(&mut app, KeyCode::Enter);
    assert_eq!((app.split, app.panes.len()), (Split::Stacked, 3));
    type_text(&mut app, "/split sideways");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.panes.len(), 3, "an unknown word splits nothing");
    let said = &app.focused_room().entries.back().unwrap().text;
    assert_eq!(said, "`sideways` is not a split: v side by side, h stacked");
}
