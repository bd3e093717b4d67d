//! Link events and replies: connecting, messages (mine pending until stored), presence,
//! whispers, zero set-up's name, the room reopened.
#![allow(clippy::unwrap_used)]

use super::*;

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
        topic: String::new(),
        archived: false,
        name: name(n),
        visibility: Visibility::Public,
        member,
        last_seq: 3,
        members: 0,
    };
    let cmds = update(
        &mut app,
        Msg::Done(Reply::Channels {
            list: vec![info("general", true), info("other", false)],
            why: Listing::Startup,
        }),
    );
    assert_eq!(
        cmds,
        [Cmd::Join {
            channel: name("general"),
            invite: None
        }]
    );
    // A reconnect does not list again: the link re-joins on its own.
    let cmds = reconnect(&mut app);
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
    let cmds = reconnect(&mut app);
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
        who_in_general(&[("bob/desk/tail", SessionKind::Human)], &["bob"], false),
    );
    assert_eq!(room(&app, "general").online[0].path, path("bob/desk/tail"));
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
    assert_eq!(app.srv().connection, Connection::Connecting);
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
                new_member: false,
            })),
        );
    }
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
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
    assert!(matches!(
        app.srv().connection,
        Connection::Reconnecting { .. }
    ));
    type_text(&mut app, "still here");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Send {
            channel: name("general"),
            text: "still here".into(),
            id: 1,
            reply_to: None,
        }]
    );
}

#[test]
fn a_local_server_started_for_the_tui_is_named_in_the_status_room() {
    let mut app = connected();
    update(
        &mut app,
        Msg::LocalServerStarted(crate::net::client::LocalServer {
            pid: 4242,
            log: "/home/alice/.config/conclave/serve.log".into(),
        }),
    );
    let said = app.rooms[0].entries.back().unwrap();
    assert_eq!(said.kind, EntryKind::Note);
    assert!(said.text.contains("pid 4242"), "{}", said.text);
    assert!(
        said.text
            .contains("log at /home/alice/.config/conclave/serve.log")
    );
}
