//! Slash commands and Tab completion.
#![allow(clippy::unwrap_used)]

use super::*;

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
            id: 1,
            reply_to: None,
        }]
    );
    assert!(app.input.is_empty());

    type_text(&mut app, "/join #random");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Join {
            channel: name("random"),
            invite: None
        }]
    );
    update(
        &mut app,
        Msg::Done(Reply::Joined(JoinReceipt {
            channel: ChannelInfo {
                topic: String::new(),
                archived: false,
                name: name("random"),
                visibility: Visibility::Public,
                member: true,
                last_seq: 0,
                members: 0,
            },
            read_seq: 0,
            new_member: true,
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
fn tab_completes_commands_channels_and_names() {
    let mut app = connected();
    update(
        &mut app,
        who_in_general(
            &[("bob/desk/api", SessionKind::Agent)],
            &["alice", "bob"],
            true,
        ),
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
fn list_shows_every_channel_with_visibility_membership_members_and_messages() {
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
                ChannelInfo {
                    members: 4,
                    ..info("general", true, 3)
                },
                ChannelInfo {
                    members: 1,
                    ..info("lab", true, 1)
                },
                info("random", false, 0),
            ],
            why: Listing::Show,
        }),
    );
    assert!(cmds.is_empty(), "listing joins nothing");
    let said = &app.focused_room().entries.back().unwrap().text;
    assert_eq!(
        said,
        "3 channels:\n  #general public   joined 4 members   3 messages\n  #lab     public   member 1 member    1 message\n  #random  public   -      0 members   0 messages"
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

#[test]
fn search_asks_the_server_and_shows_the_hits_with_their_matches() {
    let mut app = connected();
    type_text(&mut app, "/search deploy \"green build\"");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        [Cmd::Search {
            query: "deploy \"green build\"".into(),
            before: None,
        }]
    );
    let hit = crate::net::protocol::SearchHit {
        channel: name("ops"),
        seq: 7,
        ts: 0,
        from: path("bob/desk/cli"),
        from_kind: None,
        text: "deploy: green build".into(),
        marks: vec![(0, 6), (8, 19)],
    };
    update(
        &mut app,
        Msg::Done(Reply::Found {
            query: "deploy \"green build\"".into(),
            hits: vec![hit.clone()],
            next: None,
            older: false,
        }),
    );
    let notes: Vec<&str> = app
        .focused_room()
        .entries
        .iter()
        .rev()
        .take(2)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(notes[0], "#ops:7 bob/desk/cli: *deploy*: *green build*");
    assert_eq!(
        notes[1],
        "search deploy \"green build\": 1 found, newest first"
    );
    // Nothing older: a bare `/search` has nothing to go on with.
    type_text(&mut app, "/search");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    // With older hits left, it asks for the next page, once.
    update(
        &mut app,
        Msg::Done(Reply::Found {
            query: "deploy".into(),
            hits: vec![hit],
            next: Some("cursor".into()),
            older: false,
        }),
    );
    let said = app.focused_room().entries.iter().map(|e| e.text.as_str());
    assert!(
        said.clone()
            .any(|t| t == "search deploy: the newest 1 found; /search for older ones"),
        "{:?}",
        said.collect::<Vec<_>>()
    );
    let cmds = run(&mut app, "/search");
    assert_eq!(
        cmds,
        [Cmd::Search {
            query: "deploy".into(),
            before: Some("cursor".into()),
        }]
    );
    assert!(run(&mut app, "/search").is_empty());
}

#[test]
fn a_thread_shows_a_message_and_its_replies_and_what_is_typed_there_answers_it() {
    let mut app = connected();
    live(&mut app, message("general", 1, "bob/desk/cli", "ship it?"));
    live(&mut app, message("general", 2, "bob/desk/cli", "unrelated"));
    let mut yes = message("general", 3, "carol/desk/cli", "yes");
    yes.reply_to = Some(1);
    live(&mut app, yes);
    type_text(&mut app, "/thread 1");
    key(&mut app, KeyCode::Enter);
    let thread = app.focused_room();
    assert_eq!(thread.id, RoomId::Thread(name("general"), 1));
    let texts: Vec<&str> = thread.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["ship it?", "yes"]);
    // A later reply arrives in the thread as well as in the channel.
    let mut later = message("general", 4, "dave/desk/cli", "agreed");
    later.reply_to = Some(1);
    live(&mut app, later);
    assert_eq!(app.focused_room().entries.back().unwrap().text, "agreed");
    type_text(&mut app, "me too");
    let cmds = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&cmds[..], [Cmd::Send { channel, reply_to: Some(1), .. }] if channel == &name("general")),
        "{cmds:?}"
    );
    type_text(&mut app, "/thread x");
    key(&mut app, KeyCode::Enter);
    let said = &app.focused_room().entries.back().unwrap().text;
    assert!(said.contains("usage: /thread SEQ"), "{said}");
}

#[test]
fn edit_erase_and_react_change_a_message_by_its_seq_and_react_again_takes_it_back() {
    use crate::net::protocol::Change;
    let mut app = connected();
    live(&mut app, message("general", 1, "alice/laptop/tui", "helo"));
    let change = |cmds: &[Cmd]| match cmds {
        [Cmd::Change { change, text, .. }] => (change.clone(), text.clone()),
        other => panic!("{other:?}"),
    };
    let edit = run(&mut app, "/edit 1 hello, all");
    assert_eq!(
        change(&edit),
        (Change::Edit { target: 1 }, "hello, all".into())
    );
    let erase = run(&mut app, "/erase 1");
    assert_eq!(
        change(&erase),
        (Change::Delete { target: 1 }, String::new())
    );
    let add = Change::React {
        target: 1,
        removed: false,
    };
    assert_eq!(
        change(&run(&mut app, "/react 1 👍")),
        (add.clone(), "👍".into())
    );
    // Once my reaction is on the message, the same command takes it back.
    live(
        &mut app,
        crate::net::protocol::ChatMessage {
            change: Some(add),
            ..message("general", 2, "alice/laptop/tui", "👍")
        },
    );
    let back = Change::React {
        target: 1,
        removed: true,
    };
    assert_eq!(change(&run(&mut app, "/react 1 👍")), (back, "👍".into()));
    assert!(run(&mut app, "/react 1 two words").is_empty());
    assert!(
        last_line(&app).contains("one emoji or word"),
        "{}",
        last_line(&app)
    );
    assert!(run(&mut app, "/erase one").is_empty());
    assert!(
        last_line(&app).contains("usage: /erase SEQ"),
        "{}",
        last_line(&app)
    );
}

#[test]
fn dm_opens_the_direct_conversation_named_for_the_other_user_and_says_the_text() {
    let mut app = connected();
    let cmds = run(&mut app, "/dm @bob are you there?");
    let dm = name("alice+bob");
    assert!(
        matches!(&cmds[..], [Cmd::Join { channel, .. }, Cmd::Send { channel: to, text, .. }]
            if *channel == dm && *to == dm && text == "are you there?"),
        "{cmds:?}"
    );
    assert_eq!(app.room_label(app.focused_room()), "@bob");
    assert!(run(&mut app, "/dm alice").is_empty());
    assert!(
        last_line(&app).contains("@alice is you"),
        "{}",
        last_line(&app)
    );
}

#[test]
fn a_thread_asks_the_server_for_the_replies_not_loaded_and_pages_back() {
    use crate::app::update::Reply;
    use crate::net::link::HistoryPage;
    let mut app = connected();
    let cmds = run(&mut app, "/thread 40");
    assert!(
        matches!(
            &cmds[..],
            [Cmd::Thread {
                root: 40,
                before: None,
                ..
            }]
        ),
        "{cmds:?}"
    );
    let reply = |seq: u64| {
        let mut m = message("general", seq, "carol/desk/cli", &format!("reply {seq}"));
        m.reply_to = Some(40);
        m
    };
    let page = HistoryPage {
        messages: vec![reply(90), reply(95)],
        more: true,
    };
    update(
        &mut app,
        Msg::Done(Reply::Thread {
            channel: name("general"),
            root: 40,
            page,
        }),
    );
    let thread = app.focused_room();
    let texts: Vec<&str> = thread.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["reply 90", "reply 95"]);
    assert!(
        !thread.older_exhausted,
        "older replies remain on the server"
    );
}
