//! `conclave agent`'s tools, levels and launch as a model and its person meet them: paging,
//! errors that say what is wrong, the backlog of a new session, whisper and channel levels,
//! and `--print-config claude`. The real binary, a real server on loopback.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod common;

use serde_json::{Value, json};

use agent_support::*;
use common::{Server, User};
use conclave::net::names::SessionPath;
use conclave::net::protocol::SessionKind;

#[test]
fn a_channel_named_whispers_is_not_the_whispers_level() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    bob.ok(&["channel", "create", "whispers"]);
    // A key nothing reads (the old flat form of a channel level) is reported by name.
    let config = alice.config_path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[autonomy]\ngeneral = \"act\"\n")).unwrap();

    let mut agent = Mcp::spawn(
        &alice,
        project.path(),
        &["--join", "whispers", "--perm", "whispers=act"],
    );
    agent.initialize("2025-11-25");
    let warning = agent.err.wait_for(WAIT, |l| l.contains("autonomy.general"));
    assert!(warning.contains("unknown key"), "{warning}");
    let status = |agent: &mut Mcp| -> Value {
        serde_json::from_str(&text_of(&agent.call("status", json!({})))).unwrap()
    };
    let now = status(&mut agent);
    assert_eq!(now["whispers_autonomy"], "act");
    assert_eq!(now["channels"][0]["channel"], "whispers");
    assert_eq!(now["channels"][0]["autonomy"], "notify", "{now}");

    // `perm set '#whispers'` is the channel; bare `whispers` the whispers level.
    alice.ok(&["perm", "set", "#whispers", "converse"]);
    alice.ok(&["perm", "set", "whispers", "mute"]);
    agent.wait_for_level("whispers", "converse");
    assert_eq!(
        status(&mut agent)["whispers_autonomy"],
        "act",
        "the flag wins"
    );
    let shown = alice.ok(&["perm", "show"]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("#whispers") && l.ends_with("converse")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("whispers ") && l.ends_with("mute")),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whispers_from_the_owners_people_default_to_converse() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    let mut agent = Mcp::spawn(&alice, &project.path().join("api"), &[]);
    agent.initialize("2025-11-25");
    let me = SessionPath::parse("alice/box/api").unwrap();
    let (tui, _tui_events) = session(&server, &alice, SessionKind::Human, "tui").await;
    let (sibling, _sibling_events) =
        session(&server, &alice, SessionKind::Agent, "other-agent").await;

    tui.whisper(&me, "please look at the build").await.unwrap();
    let push = agent.notification("notifications/claude/channel");
    assert_eq!(push["params"]["meta"]["from"], "alice/box/tui");
    assert_eq!(push["params"]["meta"]["autonomy"], "converse", "{push}");
    let reply = agent.call("whisper", json!({"to": "alice/box/tui", "text": "on it"}));
    assert_ne!(reply["isError"], json!(true), "{reply}");

    // The user's other agents and strangers stay at the whispers level (notify by default).
    sibling.whisper(&me, "answer me").await.unwrap();
    let push = agent.notification("notifications/claude/channel");
    assert_eq!(push["params"]["meta"]["from"], "alice/box/other-agent");
    assert_eq!(push["params"]["meta"]["autonomy"], "notify", "{push}");
    bob.ok(&["whisper", "alice/box/api", "hello stranger"]);
    let push = agent.notification("notifications/claude/channel");
    assert_eq!(push["params"]["meta"]["autonomy"], "notify", "{push}");
    let refused = agent.call(
        "whisper",
        json!({"to": "alice/box/other-agent", "text": "sure"}),
    );
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert!(text_of(&refused).contains("notify"), "{refused}");
}

#[test]
fn print_config_reproduces_every_flag_with_absolute_paths() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    let cwd = tempfile::tempdir().unwrap();
    let url = server.url();
    let mut command = alice.command(&[
        "--config-dir",
        "conf",
        "agent",
        "--server",
        &url,
        "--as",
        "reviewer",
        "--join",
        "general",
        "--perm",
        "#whispers=act",
        "--perm",
        "default=converse",
        "--backlog",
        "7",
        "--print-config",
        "claude",
    ]);
    let out = command.current_dir(cwd.path()).output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    let quoted = first
        .strip_prefix("claude mcp add-json --scope local conclave '")
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{text}"));
    let config: Value = serde_json::from_str(quoted).unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_conclave"));
    assert_eq!(config["command"], exe.display().to_string());
    let conf = std::path::absolute(cwd.path().join("conf")).unwrap();
    assert_eq!(
        config["args"],
        json!([
            "--config-dir",
            conf.display().to_string(),
            "agent",
            "--server",
            url,
            "--as",
            "reviewer",
            "--join",
            "general",
            "--perm",
            "#whispers=act",
            "--perm",
            "default=converse",
            "--backlog",
            "7"
        ])
    );
    assert!(text.contains("claude --dangerously-load-development-channels server:conclave"));
}

#[test]
fn a_new_session_starts_with_only_the_last_messages_of_a_channel_unread() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    for i in 1..=6 {
        bob.ok(&["send", "general", &format!("old news {i}")]);
    }
    let mut agent = Mcp::spawn(
        &alice,
        project.path(),
        &["--join", "general", "--backlog", "3"],
    );
    agent.initialize("2025-11-25");
    let unread = text_of(&agent.call("unread", json!({})));
    assert!(
        unread.contains("old news 4") && unread.contains("old news 6"),
        "{unread}"
    );
    assert!(!unread.contains("old news 3"), "{unread}");
}

#[test]
fn read_pages_back_with_before_and_send_errors_say_what_is_wrong() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    for i in 1..=5 {
        bob.ok(&["send", "general", &format!("message {i}")]);
    }
    let mut agent = Mcp::spawn(
        &alice,
        project.path(),
        &["--join", "general", "--perm", "general=converse"],
    );
    agent.initialize("2025-11-25");
    let mut before: Option<u64> = None;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let mut args = json!({"channel": "general", "limit": 2});
        if let Some(before) = before {
            args["before"] = json!(before);
        }
        let text = text_of(&agent.call("read", args));
        seen.extend((1..=5).filter(|i| text.contains(&format!("message {i}"))));
        before = text
            .split("before=")
            .nth(1)
            .map(|rest| rest.split(')').next().unwrap().parse().unwrap());
        if before.is_none() {
            break;
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4, 5], "every page once, then no cursor");

    let nowhere = agent.call("send", json!({"channel": "nowhere", "text": "hi"}));
    assert_eq!(nowhere["isError"], json!(true));
    let text = text_of(&nowhere);
    assert!(
        text.contains("there is no channel #nowhere") && !text.contains("autonomy"),
        "{text}"
    );
    let big = "x".repeat(16 * 1024 + 1);
    let refused = agent.call("send", json!({"channel": "general", "text": big}));
    assert_eq!(refused["isError"], json!(true));
    assert!(text_of(&refused).contains("limited to 16 KiB"), "{refused}");
}

#[test]
fn a_model_searches_its_channels_but_never_a_muted_one() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    bob.ok(&["channel", "create", "noise"]);
    bob.ok(&["send", "general", "the deploy key rotates on Friday"]);
    bob.ok(&["send", "noise", "deploy gossip"]);
    alice.ok(&["join", "noise"]);
    let args = [
        "--join",
        "general",
        "--join",
        "noise",
        "--perm",
        "noise=mute",
    ];
    let mut agent = Mcp::spawn(&alice, project.path(), &args);
    agent.initialize("2025-11-25");
    let found = text_of(&agent.call("search", json!({"query": "DEPLOY"})));
    assert!(
        found.contains("| the deploy key rotates on Friday"),
        "{found}"
    );
    assert!(found.contains("#general seq 1 from bob/box/cli"), "{found}");
    assert!(
        !found.contains("gossip"),
        "a muted channel's text reached the model: {found}"
    );
    let refused = agent.call("search", json!({"query": "deploy", "channel": "noise"}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let nothing = text_of(&agent.call("search", json!({"query": "\"key rotates on Monday\""})));
    assert_eq!(nothing, "No messages.");
}
