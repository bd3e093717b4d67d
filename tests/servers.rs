//! End-to-end: one person on several servers with the real binary: registering under aliases,
//! `servers` and its default, `CHANNEL@ALIAS`, a second address of a server already known,
//! and a config written before aliases.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Server, User};

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
