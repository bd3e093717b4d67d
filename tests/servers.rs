//! End-to-end: one person on several servers with the real binary: registering under aliases,
//! `servers` and its default, `CHANNEL@ALIAS`, a second address of a server already known,
//! a config written before aliases, and one agent on two servers.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod common;

use std::time::Duration;

use agent_support::{Mcp, session};
use common::{Server, User};
use conclave::net::link::LinkEvent;
use conclave::net::names::SessionPath;
use conclave::net::protocol::{Audience, ClientFrame, RelayBody, SessionKind};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn one_person_on_two_servers_by_alias() {
    let (work, home) = (Server::start(), Server::start());
    let alice = User::unregistered("alice");
    let register = |url: &str, alias: &str| {
        alice.ok(&[
            "register",
            "alice",
            "--server",
            url,
            "--alias",
            alias,
            "--machine",
            "box",
        ])
    };
    assert!(register(&work.url(), "work").contains("as `work`"));
    register(&home.url(), "home");
    // Another address of a server already known is refused, naming the alias that reaches it.
    let other_address = work.url().replace("127.0.0.1", "localhost");
    let e = alice.fails(&["register", "alice", "--server", &other_address]);
    assert!(e.contains("answers as your server `work`"), "{e}");
    assert!(e.contains("use --server work"), "{e}");

    let listed = alice.ok(&["servers"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[1].starts_with("  home") && lines[1].ends_with("yes"),
        "{listed}"
    );
    assert!(
        lines[2].starts_with("* work"),
        "the first registered is the default: {listed}"
    );

    // Channels on either server, by alias; a bare name means the default server.
    alice.ok(&["channel", "create", "ops", "--server", "home"]);
    alice.ok(&["join", "ops@home"]);
    let (_tail, lines, err) = alice.spawn(&["tail", "ops@home"]);
    err.wait_for(WAIT, |l| l.contains("tailing #ops"));
    alice.ok(&["send", "ops@home", "at home"]);
    assert!(alice.ok(&["who", "ops@home"]).contains("alice"));
    lines.wait_for(WAIT, |l| l.contains("at home"));
    let e = alice.fails(&["send", "ops", "not at work"]);
    assert!(e.contains("there is no channel #ops"), "{e}");
    let e = alice.fails(&["send", "ops@home", "x", "--server", "work"]);
    assert!(
        e.contains("names the server `home`, but --server says `work`"),
        "{e}"
    );
    let e = alice.fails(&["send", "ops@attic", "x"]);
    assert!(e.contains("no server is called `attic`"), "{e}");

    alice.ok(&["servers", "default", "home"]);
    assert_eq!(alice.ok(&["send", "ops", "by default"]).trim(), "#ops 2");
    alice.ok(&["servers", "remove", "home"]);
    assert!(
        alice
            .ok(&["servers"])
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("* work")
    );
}

#[test]
fn a_config_from_before_aliases_reads_as_its_one_server() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    // As the release before aliases wrote it: the server and user, nothing else.
    let old = format!("server = \"{}\"\nuser = \"alice\"\n", server.url());
    std::fs::write(alice.config.path().join("config.toml"), old).unwrap();
    // Named after its host and port, as a server registered without --alias is.
    let alias = format!("local-{}", server.url().rsplit(':').next().unwrap());
    let listed = alice.ok(&["servers"]);
    let first = listed.lines().nth(1).unwrap();
    assert!(first.starts_with(&format!("* {alias}")), "{listed}");
    alice.ok(&["channel", "create", "ops", "--server", &alias]);
    alice.ok(&["join", &format!("ops@{alias}")]);
}

#[test]
fn one_agent_hears_and_answers_on_two_servers() {
    let (work, home, alice) = alice_at_work_and_home();
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["channel", "create", "ops", "--server", "home"]);
    // #general exists on both: bare, it is the default server's.
    alice.ok(&["channel", "create", "general", "--server", "home"]);
    let bob = User::register("bob", &work);
    bob.ok(&["join", "general"]);
    let carol = User::register("carol", &home);
    carol.ok(&["join", "ops"]);

    let project = tempfile::tempdir().unwrap();
    let args = [
        "--format", "jsonl", "--as", "bot", "--join", "general", "--join", "ops@home",
    ];
    let mut agent = Mcp::spawn(&alice, project.path(), &args);
    let ready = agent.next_line();
    assert_eq!(
        (ready["event"].clone(), ready["server"].clone()),
        ("ready".into(), "work".into())
    );
    assert_eq!(ready["servers"].as_array().unwrap().len(), 2, "{ready}");

    let event_from = |agent: &mut Mcp, from: &str| -> Value {
        loop {
            let v = agent.next_line();
            if v["event"] == "message" && v["from"] == from {
                return v;
            }
        }
    };
    bob.ok(&["send", "general", "from work"]);
    let heard = event_from(&mut agent, "bob/box/cli");
    assert_eq!(
        (heard["channel"].clone(), heard["server"].clone()),
        ("general".into(), "work".into())
    );
    carol.ok(&["send", "ops", "from home"]);
    let heard = event_from(&mut agent, "carol/box/cli");
    assert_eq!(
        (heard["channel"].clone(), heard["server"].clone()),
        ("ops@home".into(), "home".into())
    );

    let reply = |agent: &mut Mcp, line: &str, id: u64| -> Value {
        agent.write(line);
        loop {
            let v = agent.next_line();
            if v["id"] == id {
                return v;
            }
        }
    };
    let sent = reply(
        &mut agent,
        r#"{"cmd":"send","channel":"ops@home","text":"to home","id":1}"#,
        1,
    );
    assert_eq!(
        (sent["ok"].clone(), sent["channel"].clone()),
        (true.into(), "ops@home".into())
    );
    let (_tail, lines, _) = carol.spawn(&["tail", "ops", "--last", "1", "--format", "json"]);
    assert!(
        lines
            .wait_for(WAIT, |l| l.contains("to home"))
            .contains("alice/box/bot")
    );
    // Bare `ops` is joined on one server only: that one.
    let sent = reply(
        &mut agent,
        r#"{"cmd":"send","channel":"ops","text":"again","id":2}"#,
        2,
    );
    assert_eq!(sent["channel"], "ops@home", "{sent}");
    let unknown = reply(
        &mut agent,
        r#"{"cmd":"send","channel":"ops@nowhere","text":"x","id":3}"#,
        3,
    );
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("not on a server `nowhere`"),
        "{unknown}"
    );

    // unread covers both servers, each channel named as the tools take it.
    let unread = reply(&mut agent, r#"{"cmd":"unread","id":4}"#, 4);
    let channels: Vec<&str> = unread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"general") && channels.contains(&"ops@home"),
        "{unread}"
    );
    // #general on both servers once joined there too: bare means the default server's.
    let joined = reply(
        &mut agent,
        r#"{"cmd":"join","channel":"general@home","id":5}"#,
        5,
    );
    assert_eq!(joined["channel"], "general@home", "{joined}");
    let sent = reply(
        &mut agent,
        r#"{"cmd":"send","channel":"general","text":"bare","id":6}"#,
        6,
    );
    assert_eq!(sent["channel"], "general", "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_request_reaches_the_owner_on_whichever_server_they_are() {
    let (_work, home, alice) = alice_at_work_and_home();
    let project = tempfile::tempdir().unwrap();
    let args = ["--as", "api", "--server", "work", "--server", "home"];
    let mut agent = Mcp::spawn(&alice, project.path(), &args);
    agent.initialize("2025-11-25");
    // alice's person is online only at home.
    let (tui, mut events) = session(&home, &alice, SessionKind::Human, "tui").await;
    agent.notify(
        "notifications/claude/channel/permission_request",
        json!({"request_id": "abcde", "tool_name": "Bash", "description": "run the tests", "input_preview": "{}"}),
    );
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let LinkEvent::Relay {
            body: RelayBody::PermissionRequest { request_id, .. },
            ..
        } = event
        {
            assert_eq!(request_id, "abcde");
            break;
        }
    }
    let verdict = ClientFrame::Relay {
        id: 0,
        to: Some(SessionPath::parse("alice/box/api").unwrap()),
        audience: Some(Audience::Agents),
        body: RelayBody::PermissionVerdict {
            request_id: "abcde".into(),
            allow: true,
        },
    };
    tui.request(verdict).await.unwrap();
    let answer = agent.notification("notifications/claude/channel/permission");
    assert_eq!(
        answer["params"],
        json!({"request_id": "abcde", "behavior": "allow"})
    );
}

/// Two servers, and alice registered on both: `work` (the default) and `home`.
fn alice_at_work_and_home() -> (Server, Server, User) {
    let (work, home) = (Server::start(), Server::start());
    let alice = User::register_with_aliases("alice", &[(&work, "work"), (&home, "home")]);
    (work, home, alice)
}
