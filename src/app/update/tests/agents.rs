//! My agents: permission requests (and their expiry) and autonomy.
#![allow(clippy::unwrap_used)]

use super::*;

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
