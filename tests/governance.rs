//! Governing the room, against the server in-process: roles and who may do what, bans, mutes,
//! rename, archive, delete, invites, server bans, the audit log, and the brakes on agent loops.
#![allow(clippy::unwrap_used)]

mod inproc;

use conclave::net::link::{LinkError, LinkEvent, Resume};
use conclave::net::names::{Name, SessionPath};
use conclave::net::protocol::{
    Audience, Autonomy, ChannelAct, ChannelSetting, ClientFrame, ErrorCode, KickTarget, RelayBody,
    ReplyMode, Role, ServerFrame, Visibility,
};
use conclave::server::ServerConfig;
use inproc::*;

fn user(name: &str) -> Name {
    Name::user(name).unwrap()
}

fn channel(name: &str) -> Name {
    Name::channel(name).unwrap()
}

async fn moderate(
    client: &Client,
    on: &Name,
    act: ChannelAct,
    reason: Option<&str>,
) -> Result<(), LinkError> {
    client
        .link
        .request(ClientFrame::Moderate {
            id: 0,
            channel: on.clone(),
            act,
            reason: reason.map(str::to_owned),
        })
        .await
        .map(|_| ())
}

fn refusal(result: Result<impl std::fmt::Debug, LinkError>) -> (ErrorCode, String) {
    let e = result.unwrap_err();
    (e.code().unwrap(), e.to_string())
}

/// The next moderation event, skipping presence.
async fn next_act(client: &mut Client) -> conclave::net::protocol::ModerationEvent {
    loop {
        match next_event(&mut client.events).await {
            LinkEvent::Moderation(event) => return event,
            LinkEvent::Presence(_) => {}
            other => panic!("expected a moderation event, got {other:?}"),
        }
    }
}

async fn send(client: &Client, on: &Name, text: &str) -> Result<u64, LinkError> {
    client.link.send(on, text).await.map(|r| r.seq)
}

/// alice owns #ops (her person and her agent); bob and carol are members, each an agent
/// receiving it, with a person of their own.
struct Room {
    server: TestServer,
    alice: Client,
    alice_agent: Client,
    bob: Client,
    bob_person: Client,
    carol: Client,
    carol_person: Client,
    ops: Name,
}

async fn room(visibility: Visibility) -> Room {
    room_with(ServerConfig::ephemeral(), visibility).await
}

async fn room_with(config: ServerConfig, visibility: Visibility) -> Room {
    let server = start_with(config).await;
    let alice_agent = client(&server, "alice", "agent").await;
    let alice = alice_agent.person(&server, "tui").await;
    let bob = client(&server, "bob", "agent").await;
    let bob_person = bob.person(&server, "tui").await;
    let carol = client(&server, "carol", "agent").await;
    let carol_person = carol.person(&server, "tui").await;
    let ops = channel("ops");
    alice.link.create_channel(&ops, visibility).await.unwrap();
    if visibility == Visibility::Private {
        for member in ["bob", "carol"] {
            alice
                .link
                .request(ClientFrame::AddMember {
                    id: 0,
                    channel: ops.clone(),
                    user: user(member),
                })
                .await
                .unwrap();
        }
    }
    for c in [&alice, &alice_agent, &bob, &carol] {
        c.link.join(&ops, Resume::Live).await.unwrap();
    }
    Room {
        server,
        alice,
        alice_agent,
        bob,
        bob_person,
        carol,
        carol_person,
        ops,
    }
}

#[tokio::test]
async fn only_people_above_their_target_moderate() {
    let mut r = room(Visibility::Public).await;
    let kick_carol = ChannelAct::Kick {
        target: KickTarget::User(user("carol")),
        ban_for_ms: None,
    };
    // An agent session is refused whoever its user is, even the owner.
    let (code, message) = refusal(moderate(&r.alice_agent, &r.ops, kick_carol.clone(), None).await);
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("only a person's session"), "{message}");
    // A member may not kick, least of all the owner.
    let kick_alice = ChannelAct::Kick {
        target: KickTarget::User(user("alice")),
        ban_for_ms: None,
    };
    let (_, message) = refusal(moderate(&r.carol_person, &r.ops, kick_alice.clone(), None).await);
    assert_eq!(message, "only moderators and the owner of #ops may kick");
    // The owner makes bob a moderator; he still cannot touch the owner, but kicks carol.
    let make_mod = ChannelAct::Role {
        user: user("bob"),
        role: Role::Moderator,
    };
    moderate(&r.alice, &r.ops, make_mod, None).await.unwrap();
    let (_, message) = refusal(moderate(&r.bob_person, &r.ops, kick_alice, None).await);
    assert_eq!(message, "alice is owner of #ops; you cannot kick them");
    moderate(&r.bob_person, &r.ops, kick_carol, Some("looping"))
        .await
        .unwrap();
    // carol's agent hears it and stops receiving; the room hears it too.
    let event = next_act(&mut r.carol).await;
    assert!(matches!(event.act, ChannelAct::Role { .. }), "{event:?}");
    let event = next_act(&mut r.carol).await;
    assert_eq!(event.reason.as_deref(), Some("looping"));
    assert!(event.removes(&SessionPath::parse("carol/m/agent").unwrap()));
    let (_, message) = refusal(send(&r.carol, &r.ops, "still here?").await);
    assert!(message.contains("join #ops before posting"), "{message}");
    send(&r.alice_agent, &r.ops, "after the kick")
        .await
        .unwrap();
    let m = r.bob.next_message().await;
    assert_eq!(m.text, "after the kick");
    // A kick is not a ban: carol may come back.
    r.carol.link.join(&r.ops, Resume::Live).await.unwrap();
    r.server.stop().await;
}

#[tokio::test]
async fn a_banned_user_cannot_join_read_or_use_an_invite() {
    let r = room(Visibility::Private).await;
    let ban = ChannelAct::Ban {
        user: user("carol"),
        for_ms: Some(600_000),
    };
    moderate(&r.alice, &r.ops, ban, Some("spam")).await.unwrap();
    // A private channel still looks missing to her.
    let (code, message) = refusal(r.carol.link.join(&r.ops, Resume::Live).await);
    assert_eq!(code, ErrorCode::NotFound);
    assert_eq!(message, "there is no channel #ops");
    let (code, _) = refusal(r.carol.link.history(&r.ops, None, None, 10).await);
    assert_eq!(code, ErrorCode::NotFound);
    // An invite does not get her past the ban, nor spend its use.
    let ServerFrame::ChannelInvite { token, .. } = r
        .alice
        .link
        .request(ClientFrame::CreateInvite {
            id: 0,
            channel: r.ops.clone(),
            uses: Some(1),
            ttl_ms: None,
        })
        .await
        .unwrap()
    else {
        panic!("no invite")
    };
    let (code, message) = refusal(
        r.carol
            .link
            .join_with(&r.ops, Resume::Live, Some(token.clone()))
            .await,
    );
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(
        message.starts_with("you are banned from #ops for 10m: spam"),
        "{message}"
    );
    // Lifted, the same invite works, once.
    let unban = ChannelAct::Unban {
        user: user("carol"),
    };
    moderate(&r.alice, &r.ops, unban, None).await.unwrap();
    r.carol
        .link
        .join_with(&r.ops, Resume::Live, Some(token.clone()))
        .await
        .unwrap();
    let dave = client(&r.server, "dave", "agent").await;
    let (_, message) = refusal(dave.link.join_with(&r.ops, Resume::Live, Some(token)).await);
    assert!(message.contains("not valid"), "{message}");
    r.server.stop().await;
}

#[tokio::test]
async fn a_public_ban_says_so_and_a_mute_leaves_reading() {
    let r = room(Visibility::Public).await;
    let mute = ChannelAct::Mute {
        user: user("bob"),
        for_ms: Some(540_000),
    };
    moderate(&r.alice, &r.ops, mute, None).await.unwrap();
    let (code, message) = refusal(send(&r.bob, &r.ops, "hello").await);
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "you are muted in #ops for 9m");
    r.bob.link.history(&r.ops, None, None, 10).await.unwrap();
    let unmute = ChannelAct::Unmute { user: user("bob") };
    moderate(&r.alice, &r.ops, unmute, None).await.unwrap();
    send(&r.bob, &r.ops, "hello").await.unwrap();

    let ban = ChannelAct::Ban {
        user: user("carol"),
        for_ms: None,
    };
    moderate(&r.alice, &r.ops, ban, None).await.unwrap();
    let (code, message) = refusal(r.carol.link.join(&r.ops, Resume::Live).await);
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "you are banned from #ops for good");
    let (_, message) = refusal(r.carol.link.history(&r.ops, None, None, 10).await);
    assert_eq!(message, "you are banned from #ops for good");
    r.server.stop().await;
}

#[tokio::test]
async fn rename_keeps_history_archive_freezes_and_delete_ends_the_room() {
    let mut r = room(Visibility::Public).await;
    let first = send(&r.alice_agent, &r.ops, "before the rename")
        .await
        .unwrap();
    r.bob.next_message().await;
    let rename = ChannelAct::Rename {
        name: channel("war-room"),
    };
    // Only the owner renames.
    let (_, message) = refusal(moderate(&r.bob_person, &r.ops, rename.clone(), None).await);
    assert_eq!(
        message,
        "only the owner of #ops or a server admin may rename it"
    );
    moderate(&r.alice, &r.ops, rename, None).await.unwrap();
    let event = next_act(&mut r.bob).await;
    assert_eq!(event.channel, r.ops);
    let renamed = channel("war-room");
    let page = r.bob.link.history(&renamed, None, None, 10).await.unwrap();
    assert_eq!(page.messages[0].seq, first);
    assert_eq!(page.messages[0].channel, renamed);
    // bob keeps receiving under the new name.
    send(&r.alice_agent, &renamed, "after").await.unwrap();
    let m = r.bob.next_message().await;
    assert_eq!((m.channel.as_str(), m.seq), ("war-room", first + 1));

    moderate(&r.alice, &renamed, ChannelAct::Archive, None)
        .await
        .unwrap();
    let (_, message) = refusal(send(&r.bob, &renamed, "anyone?").await);
    assert_eq!(message, "#war-room is archived: it is read-only");
    moderate(&r.alice, &renamed, ChannelAct::Unarchive, None)
        .await
        .unwrap();
    send(&r.bob, &renamed, "back").await.unwrap();

    moderate(&r.alice, &renamed, ChannelAct::Delete, None)
        .await
        .unwrap();
    loop {
        match next_event(&mut r.bob.events).await {
            LinkEvent::Moderation(event) if event.act == ChannelAct::Delete => break,
            _ => {}
        }
    }
    let (code, _) = refusal(r.bob.link.history(&renamed, None, None, 10).await);
    assert_eq!(code, ErrorCode::NotFound);
    // The name is free again, for a channel with nothing in it.
    r.carol
        .link
        .create_channel(&renamed, Visibility::Public)
        .await
        .unwrap();
    let page = r
        .carol
        .link
        .history(&renamed, None, None, 10)
        .await
        .unwrap();
    assert!(page.messages.is_empty());
    r.server.stop().await;
}

#[tokio::test]
async fn agents_of_two_users_stop_at_the_turn_budget_until_a_person_posts() {
    let r = room(Visibility::Public).await;
    let budget = ChannelAct::Set {
        setting: ChannelSetting::AgentTurns { turns: 4 },
    };
    moderate(&r.alice, &r.ops, budget, None).await.unwrap();
    for n in 0..4 {
        let agent = if n % 2 == 0 { &r.bob } else { &r.carol };
        send(agent, &r.ops, &format!("turn {n}")).await.unwrap();
    }
    for agent in [&r.bob, &r.carol] {
        let (code, message) = refusal(send(agent, &r.ops, "one more").await);
        assert_eq!(code, ErrorCode::FloorClosed);
        assert_eq!(
            message,
            "#ops is waiting for a person: 4 agent messages in a row"
        );
    }
    let details = describe(&r.bob, &r.ops).await;
    assert_eq!(details.agent_turns_left(), Some(0));
    // A person's message opens the floor again.
    send(&r.alice, &r.ops, "carry on").await.unwrap();
    send(&r.bob, &r.ops, "thanks").await.unwrap();
    assert_eq!(describe(&r.bob, &r.ops).await.agent_turns_left(), Some(3));
    r.server.stop().await;
}

async fn describe(client: &Client, on: &Name) -> conclave::net::protocol::ChannelDetails {
    match client
        .link
        .request(ClientFrame::DescribeChannel {
            id: 0,
            channel: on.clone(),
        })
        .await
        .unwrap()
    {
        ServerFrame::ChannelDetails { details, .. } => details,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn in_mention_mode_agents_answer_mentions_or_the_floor() {
    let r = room(Visibility::Public).await;
    let mention = ChannelAct::Set {
        setting: ChannelSetting::ReplyMode {
            mode: ReplyMode::Mention,
        },
    };
    moderate(&r.alice, &r.ops, mention, None).await.unwrap();
    let (code, message) = refusal(send(&r.bob, &r.ops, "unprompted").await);
    assert_eq!(code, ErrorCode::FloorClosed);
    assert!(message.contains("answers mentions only"), "{message}");
    send(&r.alice, &r.ops, "@bob what do you think?")
        .await
        .unwrap();
    send(&r.bob, &r.ops, "I think so").await.unwrap();
    assert!(send(&r.bob, &r.ops, "and another thing").await.is_err());
    assert!(send(&r.carol, &r.ops, "me too").await.is_err());
    // The floor: carol may talk until it is taken back.
    let floor = ChannelAct::Floor {
        to: Some("@carol/m/agent".into()),
    };
    moderate(&r.alice, &r.ops, floor, None).await.unwrap();
    send(&r.carol, &r.ops, "one").await.unwrap();
    send(&r.carol, &r.ops, "two").await.unwrap();
    assert_eq!(
        describe(&r.carol, &r.ops).await.floor.as_deref(),
        Some("carol/m/agent")
    );
    moderate(&r.alice, &r.ops, ChannelAct::Floor { to: None }, None)
        .await
        .unwrap();
    assert!(send(&r.carol, &r.ops, "three").await.is_err());
    // People are never braked.
    send(&r.bob_person, &r.ops, "people talk freely")
        .await
        .unwrap();
    r.server.stop().await;
}

#[tokio::test]
async fn slow_mode_spaces_agent_posts_and_says_when() {
    let mut config = ServerConfig::ephemeral();
    config.limits.agent_sends_per_minute = 1_000_000;
    let r = room_with(config, Visibility::Public).await;
    let slow = ChannelAct::Set {
        setting: ChannelSetting::Slow { seconds: 60 },
    };
    moderate(&r.alice, &r.ops, slow, None).await.unwrap();
    send(&r.bob, &r.ops, "first").await.unwrap();
    // Straight on the wire, so the link's own waiting does not hide the refusal.
    let refused = r
        .bob
        .link
        .request(ClientFrame::Send {
            id: 0,
            channel: r.ops.clone(),
            client_id: "second".into(),
            text: "second".into(),
            reply_to: None,
            change: None,
        })
        .await
        .unwrap_err();
    let LinkError::Server(e) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.retry_after_ms.is_some_and(|ms| ms > 50_000), "{e:?}");
    assert!(e.message.contains("slow mode"), "{}", e.message);
    send(&r.carol, &r.ops, "someone else").await.unwrap();
    r.server.stop().await;
}

#[tokio::test]
async fn a_server_ban_closes_every_session_and_refuses_sign_ins_until_lifted() {
    let mut config = ServerConfig::ephemeral();
    config.admins = vec![user("alice")];
    let mut r = room_with(config, Visibility::Public).await;
    let ban = ClientFrame::BanUser {
        id: 0,
        user: user("carol"),
        for_ms: None,
        reason: Some("abuse".into()),
    };
    // Not for anyone but an admin's person.
    let (code, _) = refusal(r.bob_person.link.request(ban.clone()).await);
    assert_eq!(code, ErrorCode::Forbidden);
    r.alice.link.request(ban).await.unwrap();
    loop {
        if let LinkEvent::Closed { reason } = next_event(&mut r.carol.events).await {
            assert_eq!(reason, "you are banned from this server for good: abuse");
            break;
        }
    }
    let (link, mut events) = connect(
        &r.server,
        r.carol.identity.clone(),
        conclave::net::link::Login::Key,
        "again",
        false,
    );
    match next_event(&mut events).await {
        LinkEvent::Closed { reason } => {
            assert_eq!(reason, "carol is banned from this server for good: abuse")
        }
        other => panic!("{other:?}"),
    }
    drop(link);
    let ServerFrame::Users { users, .. } = r
        .alice
        .link
        .request(ClientFrame::ListUsers {
            id: 0,
            after: None,
            limit: None,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let names: Vec<_> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(users[0].admin && users[0].online == 2);
    assert_eq!(users[2].online, 0);
    assert_eq!(users[2].ban_reason.as_deref(), Some("abuse"));
    r.alice
        .link
        .request(ClientFrame::UnbanUser {
            id: 0,
            user: user("carol"),
        })
        .await
        .unwrap();
    let _carol_again = r.carol.person(&r.server, "back").await;
    r.server.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_acts_for_moderators_only() {
    let r = room(Visibility::Public).await;
    let mute = ChannelAct::Mute {
        user: user("carol"),
        for_ms: Some(600_000),
    };
    moderate(&r.alice, &r.ops, mute, Some("too loud"))
        .await
        .unwrap();
    let topic = ChannelAct::Topic {
        topic: "incident 42".into(),
    };
    moderate(&r.alice, &r.ops, topic, None).await.unwrap();
    let audit = ClientFrame::Audit {
        id: 0,
        channel: Some(channel("ops")),
        before: None,
        limit: 1,
    };
    let (_, message) = refusal(r.carol_person.link.request(audit.clone()).await);
    assert_eq!(
        message,
        "only moderators and the owner of #ops may read its audit log"
    );
    let ServerFrame::Audit { entries, more, .. } = r.alice.link.request(audit).await.unwrap()
    else {
        panic!()
    };
    assert!(more);
    assert_eq!(entries[0].action, "topic");
    assert_eq!(entries[0].detail, "set the topic: incident 42");
    let ServerFrame::Audit { entries, .. } = r
        .alice
        .link
        .request(ClientFrame::Audit {
            id: 0,
            channel: None,
            before: Some(entries[0].id),
            limit: 10,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(entries[0].action, "mute");
    assert_eq!(entries[0].target.as_deref(), Some("carol"));
    assert_eq!(entries[0].reason.as_deref(), Some("too loud"));
    assert_eq!(entries[0].by.to_string(), "alice/m/tui");
    // The topic travels with the channel.
    let joined = r.bob.link.join(&r.ops, Resume::Live).await.unwrap();
    assert_eq!(joined.channel.topic, "incident 42");
    r.server.stop().await;
}

#[tokio::test]
async fn a_mute_outlives_leaving_and_an_owner_who_leaves_hands_the_channel_on() {
    let r = room(Visibility::Public).await;
    let mute = ChannelAct::Mute {
        user: user("bob"),
        for_ms: None,
    };
    moderate(&r.alice, &r.ops, mute, None).await.unwrap();
    // Leaving and joining again lifts nothing.
    r.bob_person
        .link
        .request(ClientFrame::RemoveMember {
            id: 0,
            channel: r.ops.clone(),
            user: user("bob"),
        })
        .await
        .unwrap();
    r.bob.link.join(&r.ops, Resume::Live).await.unwrap();
    let (_, message) = refusal(send(&r.bob, &r.ops, "free again?").await);
    assert_eq!(message, "you are muted in #ops for good");

    // Members are added and removed by people who moderate, under the kick's rules.
    let remove_carol = ClientFrame::RemoveMember {
        id: 0,
        channel: r.ops.clone(),
        user: user("carol"),
    };
    let (_, message) = refusal(r.alice_agent.link.request(remove_carol.clone()).await);
    assert!(message.contains("only a person's session"), "{message}");
    let (_, message) = refusal(r.bob_person.link.request(remove_carol).await);
    assert_eq!(message, "only moderators and the owner of #ops may kick");

    // carol is made moderator; when alice leaves, the channel is carol's.
    let promote = ChannelAct::Role {
        user: user("carol"),
        role: Role::Moderator,
    };
    moderate(&r.alice, &r.ops, promote, None).await.unwrap();
    for session in [&r.alice, &r.alice_agent] {
        session.link.leave(&r.ops).await.unwrap();
    }
    let details = describe(&r.bob, &r.ops).await;
    assert_eq!(details.owner.unwrap().as_str(), "carol");
    assert!(details.moderators.is_empty());
    r.server.stop().await;
}

#[tokio::test]
async fn verdicts_and_autonomy_changes_relayed_to_an_agent_are_audited_once_delivered() {
    let r = room(Visibility::Public).await;
    let relay = |to: Option<&str>, body: RelayBody| ClientFrame::Relay {
        id: 0,
        to: to.map(|p| SessionPath::parse(p).unwrap()),
        audience: Some(Audience::Agents),
        body,
    };
    let autonomy = RelayBody::SetAutonomy {
        channel: channel("ops"),
        level: Autonomy::Converse,
    };
    r.alice.link.request(relay(None, autonomy)).await.unwrap();
    let verdict = RelayBody::PermissionVerdict {
        request_id: "r1".into(),
        allow: false,
    };
    r.alice
        .link
        .request(relay(Some("alice/m/agent"), verdict))
        .await
        .unwrap();
    // A verdict that reached nobody did nothing, and is not written down.
    let lost = RelayBody::PermissionVerdict {
        request_id: "r2".into(),
        allow: true,
    };
    let (code, _) = refusal(
        r.alice
            .link
            .request(relay(Some("alice/m/gone"), lost))
            .await,
    );
    assert_eq!(code, ErrorCode::NotFound);
    let ServerFrame::Audit { entries, .. } = r
        .alice
        .link
        .request(ClientFrame::Audit {
            id: 0,
            channel: None,
            before: None,
            limit: 10,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("permission-verdict", "denied permission request r1"),
            ("autonomy", "set autonomy converse in #ops"),
        ]
    );
    assert_eq!(entries[0].target.as_deref(), Some("alice/m/agent"));
    // The autonomy change is in its channel's log too, for that channel's moderators.
    let ServerFrame::Audit { entries, .. } = r
        .alice
        .link
        .request(ClientFrame::Audit {
            id: 0,
            channel: Some(channel("ops")),
            before: None,
            limit: 10,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        entries.iter().any(|e| e.action == "autonomy"),
        "{entries:?}"
    );
    r.server.stop().await;
}
