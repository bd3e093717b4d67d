//! Moderation acts as the rooms show them (the topic, a rename, a room closed by a kick) and
//! the audit view.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::app::update::AuditPage;
use crate::net::protocol::{AuditEntry, KickTarget};

#[test]
fn each_act_shows_as_a_line_in_its_room_and_the_topic_follows() {
    let mut app = connected();
    assert!(run(&mut app, "/topic").is_empty());
    assert_eq!(
        last_line(&app),
        "#general has no topic; /topic TEXT sets one"
    );
    let mute = ChannelAct::Mute {
        user: user("bob"),
        for_ms: Some(600_000),
    };
    let cmds = update(
        &mut app,
        moderation("general", "carol/desk/tui", mute, Some("spamming")),
    );
    assert!(cmds.is_empty(), "nothing rings for an act on someone else");
    let entry = app.focused_room().entries.back().unwrap();
    assert_eq!(entry.kind, EntryKind::Note);
    assert_eq!(entry.text, "carol/desk/tui muted bob for 10m (spamming)");
    assert_eq!(entry.ts, NOW);

    let topic = ChannelAct::Topic {
        topic: "ship it".into(),
    };
    update(
        &mut app,
        moderation("general", "carol/desk/tui", topic, None),
    );
    assert_eq!(room(&app, "general").topic, "ship it");
    assert_eq!(last_line(&app), "carol/desk/tui set the topic: ship it");
    run(&mut app, "/topic");
    assert_eq!(last_line(&app), "the topic of #general: ship it");

    update(
        &mut app,
        moderation("general", "carol/desk/tui", ChannelAct::Archive, None),
    );
    assert!(room(&app, "general").archived);
    update(
        &mut app,
        moderation("general", "carol/desk/tui", ChannelAct::Unarchive, None),
    );
    assert!(!room(&app, "general").archived);
}

#[test]
fn joins_and_listings_bring_the_topic_and_the_archived_state() {
    let mut app = connected();
    let ops = ChannelInfo {
        topic: "incidents only".into(),
        archived: true,
        ..info("ops", true, 0)
    };
    update(
        &mut app,
        Msg::Done(Reply::Channels {
            list: vec![info("general", true, 0), ops.clone()],
            why: Listing::Refresh,
        }),
    );
    assert_eq!(room(&app, "ops").topic, "incidents only");
    assert!(room(&app, "ops").archived);
    let reopened = ChannelInfo {
        topic: "incidents and drills".into(),
        archived: false,
        ..ops
    };
    update(
        &mut app,
        Msg::Done(Reply::Joined(JoinReceipt {
            channel: reopened,
            read_seq: 0,
            new_member: false,
        })),
    );
    assert_eq!(room(&app, "ops").topic, "incidents and drills");
    assert!(!room(&app, "ops").archived);
}

#[test]
fn kicked_the_room_stays_closed_with_its_history_and_refuses_to_send() {
    let mut app = connected();
    live(&mut app, message("general", 1, "bob/desk/cli", "before"));
    let kick = ChannelAct::Kick {
        target: KickTarget::User(user("alice")),
        ban_for_ms: None,
    };
    update(
        &mut app,
        moderation("general", "bob/desk/tui", kick, Some("off topic")),
    );
    let general = room(&app, "general");
    assert_eq!(
        general.closed.as_deref(),
        Some("bob/desk/tui kicked alice (off topic)")
    );
    assert!(
        general.entries.iter().any(|e| e.text == "before"),
        "history stays"
    );
    assert_eq!(
        last_line(&app),
        "you are no longer in #general; its history stays here (/leave closes this room)"
    );

    assert!(run(&mut app, "still here?").is_empty());
    let entry = app.focused_room().entries.back().unwrap();
    assert_eq!(entry.kind, EntryKind::Error);
    assert_eq!(
        entry.text,
        "not sent: you are no longer in #general: bob/desk/tui kicked alice (off topic). /join general to come back if you may"
    );
    // A reconnect asks nothing about it; scrolling back fetches nothing.
    let cmds = reconnect(&mut app);
    assert!(!cmds.iter().any(|c| matches!(
        c,
        Cmd::Who { channel: Some(c), .. } if *c == name("general")
    )));
    app.panes[0].at_top.set(true);
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    key(&mut app, KeyCode::End);

    // Joining again opens it; leaving a closed room just closes it.
    assert_eq!(
        run(&mut app, "/join general"),
        [Cmd::Join {
            channel: name("general"),
            invite: None
        }]
    );
    update(
        &mut app,
        Msg::Done(Reply::Joined(JoinReceipt {
            channel: info("general", true, 1),
            read_seq: 1,
            new_member: true,
        })),
    );
    assert_eq!(room(&app, "general").closed, None);
    update(
        &mut app,
        moderation("general", "bob/desk/tui", ChannelAct::Delete, None),
    );
    assert!(
        room(&app, "general").closed.is_some(),
        "a deleted channel closes"
    );
    assert!(run(&mut app, "/leave").is_empty());
    assert_eq!(app.room_index(&RoomId::Channel(name("general"))), None);
}

#[test]
fn a_removal_out_of_view_counts_as_a_mention() {
    let mut app = connected();
    let ban = ChannelAct::Ban {
        user: user("alice"),
        for_ms: Some(3_600_000),
    };
    let cmds = update(&mut app, moderation("ops", "bob/desk/tui", ban, None));
    assert_eq!(cmds, [Cmd::Bell]);
    assert_eq!(room(&app, "ops").mentions, 1);
    assert!(room(&app, "ops").closed.is_some());
}

#[test]
fn acts_on_others_update_the_member_list_but_leave_my_room_open() {
    let mut app = connected();
    update(
        &mut app,
        who_in_general(
            &[
                ("alice/laptop/api", SessionKind::Agent),
                ("bob/desk/cli", SessionKind::Human),
            ],
            &["alice", "bob"],
            false,
        ),
    );
    let my_agent = ChannelAct::Kick {
        target: KickTarget::Session(path("alice/laptop/api")),
        ban_for_ms: None,
    };
    update(
        &mut app,
        moderation("general", "bob/desk/tui", my_agent, None),
    );
    let ban_bob = ChannelAct::Ban {
        user: user("bob"),
        for_ms: None,
    };
    update(
        &mut app,
        moderation("general", "carol/x/tui", ban_bob, None),
    );
    let general = room(&app, "general");
    assert_eq!(general.closed, None, "a kick of another session of mine");
    assert!(general.online.is_empty());
    assert_eq!(general.members, [user("alice")]);
}

#[test]
fn a_renamed_channel_changes_name_in_place() {
    let mut app = connected();
    live(&mut app, message("general", 1, "bob/desk/cli", "kept"));
    let rename = ChannelAct::Rename {
        name: name("lobby"),
    };
    update(
        &mut app,
        moderation("general", "bob/desk/tui", rename, None),
    );
    assert_eq!(app.focused_room().id, RoomId::Channel(name("lobby")));
    assert_eq!(app.room_index(&RoomId::Channel(name("general"))), None);
    assert!(app.srv().known_channels.contains(&name("lobby")));
    assert!(!app.srv().known_channels.contains(&name("general")));
    assert_eq!(
        last_line(&app),
        "bob/desk/tui renamed the channel to #lobby"
    );
    assert!(matches!(
        run(&mut app, "hello").as_slice(),
        [Cmd::Send { channel, .. }] if *channel == name("lobby")
    ));
}

#[test]
fn a_message_on_its_way_when_the_channel_is_renamed_is_still_acknowledged() {
    let mut app = connected();
    let cmds = run(&mut app, "on its way");
    let [Cmd::Send { id, .. }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    let id = *id;
    let rename = ChannelAct::Rename {
        name: name("lobby"),
    };
    update(
        &mut app,
        moderation("general", "bob/desk/tui", rename, None),
    );
    update(
        &mut app,
        Msg::Done(Reply::Sent {
            id,
            seq: 1,
            ts: NOW,
        }),
    );
    let r = room(&app, "lobby");
    let sent = r.entries.iter().find(|e| e.text == "on its way").unwrap();
    assert_eq!((sent.delivery.clone(), sent.seq), (Delivery::Done, Some(1)));
}

fn entry(id: u64, detail: &str) -> AuditEntry {
    AuditEntry {
        id,
        ts: NOW - 1_000 * (100 - id as i64),
        by: path("carol/desk/tui"),
        action: "mute".into(),
        channel: Some(name("general")),
        target: Some("bob".into()),
        detail: detail.into(),
        reason: None,
    }
}

/// Entries `ids` newest first, as the server answers.
fn audit_page(ids: std::ops::RangeInclusive<u64>, more: bool, older: bool) -> Msg {
    Msg::Done(Reply::Audit {
        channel: name("general"),
        older,
        page: Ok(AuditPage {
            entries: ids
                .rev()
                .map(|id| entry(id, &format!("act {id}")))
                .collect(),
            more,
        }),
    })
}

#[test]
fn the_audit_view_pages_back_and_esc_returns_to_the_channel() {
    let mut app = connected();
    assert_eq!(
        run(&mut app, "/audit"),
        [Cmd::Audit {
            channel: name("general"),
            before: None
        }]
    );
    assert_eq!(app.focused_room().id, RoomId::Audit(name("general")));
    assert!(app.focused_room().loading);
    update(&mut app, audit_page(21..=30, true, false));
    let texts: Vec<&str> = app
        .focused_room()
        .entries
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts.first(),
        Some(&"carol/desk/tui act 21"),
        "oldest at the top"
    );
    assert_eq!(texts.last(), Some(&"carol/desk/tui act 30"));
    assert_eq!(app.focused_room().marker, None, "nothing here is unread");

    // At the top, PgUp asks for the page before the oldest entry.
    app.panes[0].at_top.set(true);
    assert_eq!(
        key(&mut app, KeyCode::PageUp),
        [Cmd::Audit {
            channel: name("general"),
            before: Some(21)
        }]
    );
    update(&mut app, audit_page(11..=20, false, true));
    assert_eq!(app.focused_room().entries.len(), 20);
    assert!(app.focused_room().older_exhausted);
    app.panes[0].at_top.set(true);
    assert!(key(&mut app, KeyCode::PageUp).is_empty(), "nothing older");
    key(&mut app, KeyCode::End);

    // Read-only; a command typed here governs its channel.
    assert!(run(&mut app, "typed here").is_empty());
    assert_eq!(
        last_line(&app),
        "the audit log is read-only: Esc goes back to #general"
    );
    assert_eq!(
        run(&mut app, "/unmute bob"),
        [asks(ChannelAct::Unmute { user: user("bob") }, None)]
    );

    key(&mut app, KeyCode::Esc);
    assert_eq!(app.focused_room().id, RoomId::Channel(name("general")));
    assert_eq!(app.room_index(&RoomId::Audit(name("general"))), None);
}

#[test]
fn an_audit_log_refused_says_why_in_its_view() {
    let mut app = connected();
    run(&mut app, "/audit");
    update(
        &mut app,
        Msg::Done(Reply::Audit {
            channel: name("general"),
            older: false,
            page: Err("only moderators and the owner of #general may read its audit log".into()),
        }),
    );
    let audit = app.focused_room();
    assert!(!audit.loading);
    assert_eq!(
        last_line(&app),
        "cannot read the audit log of #general: only moderators and the owner of #general may read its audit log"
    );
    // Entries that lack words still say what was done.
    let bare = AuditEntry {
        reason: Some("loops".into()),
        ..entry(1, "")
    };
    update(
        &mut app,
        Msg::Done(Reply::Audit {
            channel: name("general"),
            older: false,
            page: Ok(AuditPage {
                entries: vec![bare],
                more: false,
            }),
        }),
    );
    assert!(
        app.focused_room()
            .entries
            .iter()
            .any(|e| e.text == "carol/desk/tui mute bob (loops)")
    );
}
