//! The slash commands that govern a channel: what each asks the server for, what a wrong one
//! says, and Tab for their arguments.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::net::protocol::{ChannelSetting, KickTarget, ReplyMode, Role};

#[test]
fn each_governance_command_asks_for_its_act_in_the_focused_channel() {
    let mut app = connected();
    let bob = || user("bob");
    let cases: Vec<(&str, Cmd)> = vec![
        (
            "/kick bob",
            asks(
                ChannelAct::Kick {
                    target: KickTarget::User(bob()),
                    ban_for_ms: None,
                },
                None,
            ),
        ),
        (
            "/kick bob/desk/api 10m looping on the build",
            asks(
                ChannelAct::Kick {
                    target: KickTarget::Session(path("bob/desk/api")),
                    ban_for_ms: Some(600_000),
                },
                Some("looping on the build"),
            ),
        ),
        (
            "/ban @bob spam",
            asks(
                ChannelAct::Ban {
                    user: bob(),
                    for_ms: None,
                },
                Some("spam"),
            ),
        ),
        (
            "/ban bob 2h",
            asks(
                ChannelAct::Ban {
                    user: bob(),
                    for_ms: Some(7_200_000),
                },
                None,
            ),
        ),
        ("/unban bob", asks(ChannelAct::Unban { user: bob() }, None)),
        (
            "/mute bob 10m spamming",
            asks(
                ChannelAct::Mute {
                    user: bob(),
                    for_ms: Some(600_000),
                },
                Some("spamming"),
            ),
        ),
        (
            "/unmute bob",
            asks(ChannelAct::Unmute { user: bob() }, None),
        ),
        (
            "/role bob moderator",
            asks(
                ChannelAct::Role {
                    user: bob(),
                    role: Role::Moderator,
                },
                None,
            ),
        ),
        (
            "/topic deploys  go through @claude",
            asks(
                ChannelAct::Topic {
                    topic: "deploys  go through @claude".into(),
                },
                None,
            ),
        ),
        (
            "/topic -",
            asks(
                ChannelAct::Topic {
                    topic: String::new(),
                },
                None,
            ),
        ),
        (
            "/rename #lab",
            asks(ChannelAct::Rename { name: name("lab") }, None),
        ),
        ("/archive", asks(ChannelAct::Archive, None)),
        (
            "/unarchive back to work",
            asks(ChannelAct::Unarchive, Some("back to work")),
        ),
        (
            "/set agent-turns 5",
            asks(
                ChannelAct::Set {
                    setting: ChannelSetting::AgentTurns { turns: 5 },
                },
                None,
            ),
        ),
        (
            "/set reply-mode mention",
            asks(
                ChannelAct::Set {
                    setting: ChannelSetting::ReplyMode {
                        mode: ReplyMode::Mention,
                    },
                },
                None,
            ),
        ),
        (
            "/set slow 2m",
            asks(
                ChannelAct::Set {
                    setting: ChannelSetting::Slow { seconds: 120 },
                },
                None,
            ),
        ),
        (
            "/set slow off",
            asks(
                ChannelAct::Set {
                    setting: ChannelSetting::Slow { seconds: 0 },
                },
                None,
            ),
        ),
        (
            "/floor @claude",
            asks(
                ChannelAct::Floor {
                    to: Some("claude".into()),
                },
                None,
            ),
        ),
        ("/floor", asks(ChannelAct::Floor { to: None }, None)),
        ("/delete #general", asks(ChannelAct::Delete, None)),
        (
            "/invite",
            Cmd::Invite {
                channel: name("general"),
                uses: None,
                ttl_ms: None,
            },
        ),
        (
            "/invite 5 1d",
            Cmd::Invite {
                channel: name("general"),
                uses: Some(5),
                ttl_ms: Some(86_400_000),
            },
        ),
        (
            "/invite 2h",
            Cmd::Invite {
                channel: name("general"),
                uses: None,
                ttl_ms: Some(7_200_000),
            },
        ),
        (
            "/join #lab K3YS-T0KEN",
            Cmd::Join {
                channel: name("lab"),
                invite: Some("K3YS-T0KEN".into()),
            },
        ),
    ];
    for (typed, expected) in cases {
        assert_eq!(run(&mut app, typed), [expected], "{typed}");
    }
}

#[test]
fn a_command_typed_wrong_says_how_and_asks_for_nothing() {
    let mut app = connected();
    for (typed, said) in [
        ("/mute", "usage: /mute USER [DURATION] [REASON]"),
        ("/role bob king", "usage: /role USER owner|moderator|member"),
        (
            "/set reply-mode loud",
            "`loud` is not a reply mode: open or mention",
        ),
        ("/set agent-turns many", "`many` is not a number of turns"),
        (
            "/set speed 3",
            "usage: /set agent-turns N | reply-mode open|mention | slow SECONDS",
        ),
        (
            "/invite lots",
            "usage: /invite [USES] [TTL], like /invite 5 1d",
        ),
        ("/rename", "usage: /rename NEW-NAME"),
    ] {
        assert!(run(&mut app, typed).is_empty(), "{typed}");
        let entry = app.focused_room().entries.back().unwrap();
        assert_eq!((entry.kind, entry.text.as_str()), (EntryKind::Error, said));
    }
    // Outside a channel there is nothing to govern.
    key_with(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    key_with(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.focused_room().id, RoomId::Home);
    assert!(run(&mut app, "/mute bob").is_empty());
    assert_eq!(
        last_line(&app),
        "that acts on a channel: switch to one first"
    );
}

#[test]
fn delete_asks_for_the_channel_name_typed_again() {
    let mut app = connected();
    for typed in ["/delete", "/delete ops"] {
        assert!(run(&mut app, typed).is_empty(), "{typed}");
        let entry = app.focused_room().entries.back().unwrap();
        assert_eq!(entry.kind, EntryKind::Note);
        assert_eq!(
            entry.text,
            "deleting #general deletes its history for everyone, for good: type /delete general to confirm"
        );
    }
    assert_eq!(
        run(&mut app, "/delete general"),
        [asks(ChannelAct::Delete, None)]
    );
}

#[test]
fn an_invite_shows_its_token_and_how_to_use_it() {
    let mut app = connected();
    update(
        &mut app,
        Msg::Done(Reply::Invite {
            channel: name("general"),
            token: "K3YS-T0KEN".into(),
            uses: 5,
            expires: NOW + 86_400_000,
        }),
    );
    assert_eq!(
        last_line(&app),
        "invite to #general (5 uses, valid for 1d): whoever has it types /join #general K3YS-T0KEN"
    );
}

#[test]
fn tab_completes_governance_commands_people_and_fixed_words() {
    let mut app = connected();
    update(
        &mut app,
        who_in_general(
            &[("bob/desk/claude", SessionKind::Agent)],
            &["alice", "bob"],
            false,
        ),
    );
    let tab = |app: &mut App, typed: &str| -> String {
        app.input = TextArea::default();
        app.completion = None;
        type_text(app, typed);
        key(app, KeyCode::Tab);
        app.input.lines()[0].clone()
    };
    assert_eq!(tab(&mut app, "/mu"), "/mute ");
    assert_eq!(tab(&mut app, "/mute b"), "/mute bob ");
    assert_eq!(tab(&mut app, "/kick bob/"), "/kick bob/desk/claude ");
    assert_eq!(tab(&mut app, "/role bob mo"), "/role bob moderator ");
    assert_eq!(tab(&mut app, "/set r"), "/set reply-mode ");
    assert_eq!(
        tab(&mut app, "/set reply-mode m"),
        "/set reply-mode mention "
    );
    assert_eq!(
        tab(&mut app, "/set slow 3"),
        "/set slow 3",
        "a number: nothing to offer"
    );
    assert_eq!(tab(&mut app, "/floor "), "/floor @bob/desk/claude ");
    assert_eq!(tab(&mut app, "/delete g"), "/delete general ");
}

#[test]
fn pin_and_unpin_ask_for_their_act_by_seq() {
    let mut app = connected();
    let cmds = run(&mut app, "/pin 3");
    assert_eq!(cmds, [asks(ChannelAct::Pin { seq: 3 }, None)]);
    let cmds = run(&mut app, "/unpin 3 old news");
    assert_eq!(cmds, [asks(ChannelAct::Unpin { seq: 3 }, Some("old news"))]);
    assert!(run(&mut app, "/pin x").is_empty());
    assert!(last_line(&app).contains("/pin SEQ"), "{}", last_line(&app));
}
