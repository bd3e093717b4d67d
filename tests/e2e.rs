//! End-to-end: the real `conclave` binary, a real server on loopback, real files.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_support::Mcp;
use common::{Server, User, json, postgres};

const WAIT: Duration = Duration::from_secs(20);

/// alice and bob in #general, bob tailing it.
fn two_users_in_general(server: &Server) -> (User, User) {
    let alice = User::register("alice", server);
    let bob = User::register("bob", server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "#general"]);
    bob.ok(&["join", "general"]);
    (alice, bob)
}

#[test]
fn two_users_exchange_messages_and_a_whisper() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    let ready = err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    let bob_path = ready.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(bob_path, "bob/box/tail");

    assert_eq!(
        alice.ok(&["send", "general", "hello bob"]).trim(),
        "#general 1"
    );
    let line = json(&lines.wait_for(WAIT, |_| true));
    assert_eq!(line["kind"], "message");
    assert_eq!(line["channel"], "general");
    assert_eq!(line["seq"], 1);
    assert_eq!(line["from"], "alice/box/cli");
    assert_eq!(line["text"], "hello bob");
    assert!(line["ts"].as_str().unwrap().ends_with('Z'));

    // Text from stdin, and an answer from bob's side.
    let mut send = bob.command(&["send", "general", "-"]);
    send.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = send.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let line = json(&lines.wait_for(WAIT, |_| true));
    assert_eq!(line["text"], "line one\nline two");
    assert_eq!(line["from"], "bob/box/cli");

    assert_eq!(
        alice.ok(&["whisper", &bob_path, "psst"]).trim(),
        "whispered to bob/box/tail"
    );
    let line = json(&lines.wait_for(WAIT, |_| true));
    assert_eq!(line["kind"], "whisper");
    assert_eq!(line["from"], "alice/box/cli");
    assert_eq!(line["text"], "psst");

    // Escape sequences from a sender are shown, not obeyed, by `tail`.
    let (_plain, plain_lines, plain_err) = bob.spawn(&["tail", "general", "--last", "1"]);
    plain_err.wait_for(WAIT, |l| l.contains("tailing"));
    // A carriage return (like every Unicode line break) starts an indented line instead of
    // overwriting this one; bidi overrides show escaped too.
    alice.ok(&["send", "general", "evil \u{1b}[2Jclear\u{202e}x\rfake"]);
    let shown = plain_lines.wait_for(WAIT, |l| l.contains("evil"));
    assert!(
        shown.contains("#general:3 alice/box/cli: evil"),
        "the seq shows: {shown:?}"
    );
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
    assert!(shown.ends_with("\\u{1b}[2Jclear\\u{202e}x"), "{shown:?}");
    assert_eq!(plain_lines.next(WAIT).as_deref(), Some("    fake"));

    let e = alice.fails(&["whisper", "bob/box/nobody", "hi"]);
    assert!(e.contains("bob/box/nobody is not online"), "{e}");

    let who = alice.ok(&["who", "general"]);
    assert!(who.contains("bob/box/tail"), "{who}");
    assert!(who.contains("alice") && who.contains("2 members"), "{who}");

    // Leaving from one session while another still receives says so; alone, it ends membership.
    let left = bob.ok(&["leave", "general"]);
    assert!(left.contains("you stay a member"), "{left}");
    let left = alice.ok(&["leave", "general"]);
    assert_eq!(left.trim(), "left #general");
    assert!(
        alice
            .fails(&["send", "general", "hi"])
            .contains("join #general")
    );
}

#[test]
fn history_reads_last_n_and_since() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    for i in 1..=5 {
        alice.ok(&["send", "general", &format!("m{i}")]);
    }
    let (_tail, lines, _err) = bob.spawn(&["tail", "general", "--last", "2", "--format", "json"]);
    let seqs: Vec<i64> = (0..2)
        .map(|_| {
            json(&lines.wait_for(WAIT, |_| true))["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [4, 5]);

    let (_tail, lines, _err) = bob.spawn(&["tail", "general", "--since", "1"]);
    let first = lines.wait_for(WAIT, |_| true);
    assert!(first.contains("#general:2 alice/box/cli: m2"), "{first}");
}

#[test]
fn tail_survives_a_server_restart_with_no_gap_and_no_duplicate() {
    let mut server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    for i in 1..=5 {
        alice.ok(&["send", "general", &format!("m{i}")]);
    }
    let status = server.stop("TERM");
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    server.restart();
    for i in 6..=10 {
        alice.ok(&["send", "general", &format!("m{i}")]);
    }
    let got: Vec<(i64, String)> = (0..10)
        .map(|_| {
            let v = json(&lines.wait_for(Duration::from_secs(40), |_| true));
            (
                v["seq"].as_i64().unwrap(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(i64, String)> = (1..=10).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, expected);
    assert!(
        lines.next(Duration::from_millis(500)).is_none(),
        "a duplicate arrived"
    );
}

#[test]
fn acknowledged_messages_survive_kill_9_under_load() {
    let mut server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let alice = Arc::new(alice);
    let senders: Vec<_> = (0..10)
        .map(|s| {
            let alice = alice.clone();
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for j in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let text = format!("s{s}-{j}");
                    let out = alice.run(&["send", "general", &text]);
                    if !out.status.success() {
                        break;
                    }
                    acked.lock().unwrap().insert(text);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.stop("KILL");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // The sends cut off by the kill retry with their client ids and land once it is back.
    server.restart();
    for sender in senders {
        sender.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "too few sends before the kill: {}",
        acked.len()
    );

    let (_tail, lines, _err) = bob.spawn(&["tail", "general", "--since", "0", "--format", "json"]);
    let mut stored = BTreeSet::new();
    let mut last_seq = 0;
    while !acked.is_subset(&stored) {
        let Some(line) = lines.next(WAIT) else {
            let missing: Vec<_> = acked.difference(&stored).take(5).collect();
            panic!("acknowledged messages missing after kill -9: {missing:?}");
        };
        let v = json(&line);
        let seq = v["seq"].as_i64().unwrap();
        assert_eq!(seq, last_seq + 1, "history has a gap or a duplicate");
        last_seq = seq;
        stored.insert(v["text"].as_str().unwrap().to_owned());
    }
}

#[test]
fn clear_errors_for_bad_input_and_a_dead_server() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);

    let e =
        User::unregistered("carol").fails(&["send", "general", "hi", "--server", &server.url()]);
    assert!(e.contains("conclave key"), "{e}");
    let e = User::unregistered("mallory").fails(&["register", "alice", "--server", &server.url()]);
    assert!(e.contains("taken"), "{e}");
    let e = alice.fails(&["send", "nowhere", "hi"]);
    assert!(e.contains("there is no channel #nowhere"), "{e}");
    let e = alice.fails(&["send", "bad name", "hi"]);
    assert!(e.contains("channel name"), "{e}");
    let e = alice.fails(&["send", "general", &"x".repeat(20_000)]);
    assert!(e.contains("limit"), "{e}");
    let e = alice.fails(&["send", "general", "hi", "--server", "ws://127.0.0.1:9"]);
    assert!(e.contains("cannot reach ws://127.0.0.1:9"), "{e}");
    let e = alice.fails(&["send", "general", "hi", "--server", "http://x"]);
    assert!(e.contains("not a server address"), "{e}");

    // A private channel is invisible to strangers, in listings and by name.
    alice.ok(&["channel", "create", "secret", "--visibility", "private"]);
    let listed = bob.ok(&["channel", "list"]);
    assert!(!listed.contains("secret"), "{listed}");
    let e = bob.fails(&["join", "secret"]);
    assert!(e.contains("there is no channel #secret"), "{e}");
    let e = bob.fails(&["send", "secret", "hi"]);
    assert!(e.contains("there is no channel #secret"), "{e}");
    assert!(alice.ok(&["channel", "list"]).contains("secret"));
    // Taking a name says the same whether the channel is private or not.
    let private = bob.fails(&["channel", "create", "secret"]);
    let public = bob.fails(&["channel", "create", "general"]);
    assert!(
        private.contains("the name #secret is not available"),
        "{private}"
    );
    assert!(
        public.contains("the name #general is not available"),
        "{public}"
    );

    // An explicit handle that is live already is refused, not renamed.
    let (_tail, _lines, err) = alice.spawn(&["tail", "general"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    let e = alice.fails(&["send", "general", "hi", "--as", "tail"]);
    assert!(e.contains("already connected"), "{e}");
}

#[test]
fn machines_are_added_listed_and_removed_with_their_sessions() {
    let server = Server::start();
    let (alice, _bob) = two_users_in_general(&server);
    // A second machine of alice's: the first makes a one-time code, the second enrolls its
    // own key with it (proving it holds the key).
    let invite = alice.ok(&["machine", "invite", "desk"]);
    let code = invite
        .split_whitespace()
        .skip_while(|w| *w != "enroll")
        .nth(1)
        .unwrap()
        .to_owned();
    let desk = User::unregistered("alice");
    let enrolled = desk.ok(&["machine", "enroll", &code, "--server", &server.url()]);
    assert_eq!(enrolled.trim(), "enrolled this machine as alice/desk");
    let key = desk.ok(&["key"]).trim().to_owned();
    let late = User::unregistered("mallory").fails(&[
        "machine",
        "enroll",
        &code,
        "--server",
        &server.url(),
    ]);
    assert!(
        late.contains("unknown, used or expired"),
        "the code works once: {late}"
    );
    let listed = alice.ok(&["machine", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("box ") && lines[0].ends_with("(this machine)"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with("desk ") && lines[1].contains(&key),
        "{listed}"
    );

    let server_flag = ["--server", &server.url()];
    let mut tail_args = vec!["tail", "general"];
    tail_args.extend(server_flag);
    let (mut tail, _lines, err) = desk.spawn(&tail_args);
    let ready = err.wait_for(WAIT, |l| l.contains("tailing"));
    assert!(ready.ends_with("alice/desk/tail"), "{ready}");

    alice.ok(&["machine", "remove", "desk"]);
    let gone = err.wait_for(WAIT, |l| l.contains("removed"));
    assert!(gone.contains("machine alice/desk was removed"), "{gone}");
    let status = tail.0.wait().unwrap();
    assert!(!status.success());
    let mut send_args = vec!["send", "general", "hi"];
    send_args.extend(server_flag);
    let e = desk.fails(&send_args);
    assert!(e.contains("not enrolled"), "{e}");
}

#[test]
fn private_channels_admit_whom_their_creator_adds_and_removal_is_immediate() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    let carol = User::register("carol", &server);
    alice.ok(&["channel", "create", "secret", "--visibility", "private"]);
    assert!(
        bob.fails(&["join", "secret"])
            .contains("there is no channel #secret")
    );
    // Only the creator (or a server admin) lets people in.
    let e = bob.fails(&["channel", "add", "secret", "carol"]);
    assert!(
        e.contains("there is no channel #secret"),
        "strangers see nothing: {e}"
    );
    let e = alice.fails(&["channel", "add", "secret", "nobody"]);
    assert!(e.contains("there is no user `nobody`"), "{e}");
    alice.ok(&["channel", "add", "secret", "bob"]);
    assert!(bob.ok(&["channel", "list"]).contains("secret"));
    let e = bob.fails(&["channel", "add", "secret", "carol"]);
    assert!(e.contains("only moderators and the owner"), "{e}");

    let (mut tail, lines, err) = bob.spawn(&["tail", "secret", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    alice.ok(&["send", "secret", "for bob"]);
    assert_eq!(json(&lines.wait_for(WAIT, |_| true))["text"], "for bob");

    alice.ok(&["channel", "remove", "secret", "bob"]);
    alice.ok(&["send", "secret", "not for bob any more"]);
    assert!(
        lines.next(Duration::from_millis(800)).is_none(),
        "a removed member still received"
    );
    assert!(
        bob.fails(&["send", "secret", "hi"])
            .contains("there is no channel #secret")
    );
    assert!(
        carol
            .fails(&["join", "secret"])
            .contains("there is no channel #secret")
    );
    let _ = tail.0.kill();
}

#[test]
fn server_admins_named_by_the_operator_can_manage_any_channel() {
    let server = Server::start_with(&["--admin", "root"]);
    let user = |name: &str| User::register(name, &server);
    let (alice, root, bob) = (user("alice"), user("root"), user("bob"));
    alice.ok(&["channel", "create", "ops"]);
    assert!(
        bob.fails(&["channel", "add", "ops", "bob"])
            .contains("only moderators and the owner")
    );
    root.ok(&["channel", "add", "ops", "bob"]);
    assert!(bob.ok(&["channel", "list"]).contains("member"));
    // Private ones too, though the admin is not in them.
    alice.ok(&["channel", "create", "hideout", "--visibility", "private"]);
    root.ok(&["channel", "add", "hideout", "bob"]);
    assert!(bob.ok(&["channel", "list"]).contains("hideout"));
}

#[test]
fn a_server_refuses_an_emptied_database_and_never_says_listening_when_it_cannot_open() {
    let mut server = Server::start();
    let _alice = User::register("alice", &server);
    assert!(server.stop("TERM").success());
    let data = server.data.path();
    for name in ["conclave.db-wal", "conclave.db-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }
    std::fs::File::create(data.join("conclave.db")).unwrap();

    let operator = User::unregistered("operator");
    let serve = |dir: &std::path::Path| {
        operator.run(&[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ])
    };
    let out = serve(data);
    assert!(!out.status.success(), "an emptied database must not start");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    let said = common::stderr(&out);
    assert!(
        said.contains("is empty, but this directory belonged to server"),
        "{said}"
    );

    // A data dir that cannot be used at all: refused before `listening on`.
    let not_a_dir = data.join("server-id");
    let out = serve(&not_a_dir);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

#[test]
fn a_send_cut_off_before_its_answer_is_sent_again_and_stored_once() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    alice.ok(&["channel", "create", "general"]);
    // The message is far larger than the handshake, so the cut falls right after it went out.
    let text = format!("{}-only-once", "x".repeat(3000));
    let proxy = common::CuttingProxy::start(&server.addr, 2000);
    let out = alice.run(&["send", "general", &text, "--server", &proxy.url()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("sending again"));
    alice.ok(&["send", "general", "sentinel"]);

    let (_tail, lines, _err) =
        alice.spawn(&["tail", "general", "--since", "0", "--format", "json"]);
    let mut copies = 0;
    loop {
        let line = json(&lines.wait_for(WAIT, |_| true));
        if line["text"] == "sentinel" {
            break;
        }
        if line["text"]
            .as_str()
            .unwrap_or_default()
            .ends_with("-only-once")
        {
            copies += 1;
        }
    }
    assert_eq!(copies, 1);
}

#[test]
fn status_tells_where_things_are_and_serve_stop_stops_the_server() {
    let mut server = Server::start();
    let alice = User::register("alice", &server);
    let data = server.data.path().to_str().unwrap().to_owned();
    let status = alice.ok(&["status", "--data-dir", &data]);
    assert!(
        status.contains("yes, signed in as alice/box/status"),
        "{status}"
    );
    assert!(
        status.contains(&format!("running, pid {}", server.pid())),
        "{status}"
    );
    assert!(status.contains(&server.url()), "{status}");

    // One data directory, one server: a second is refused before it touches the database.
    let second = alice.fails(&["serve", "--bind", "127.0.0.1:0", "--data-dir", &data]);
    assert!(second.contains("already uses"), "{second}");

    let pid = server.pid();
    let stopped = alice.ok(&["serve", "--stop", "--data-dir", &data]);
    assert!(
        stopped.contains(&format!("stopped the server (pid {pid}")),
        "{stopped}"
    );
    assert!(server.exited().success(), "SIGTERM ends the server cleanly");
    let status = alice.ok(&["status", "--data-dir", &data]);
    assert!(status.contains("not running"), "{status}");
    assert!(status.contains("reachable    no"), "{status}");
    let again = alice.ok(&["serve", "--stop", "--data-dir", &data]);
    assert!(again.contains("no server is running"), "{again}");
}

#[test]
fn completions_man_page_and_version_come_from_the_command_line_definition() {
    let user = User::unregistered("anyone");
    let bash = user.ok(&["completions", "bash"]);
    assert!(bash.contains("_conclave") && bash.contains("--max-sessions-per-user"));
    assert!(
        user.ok(&["completions", "zsh"])
            .contains("#compdef conclave")
    );
    assert!(
        user.ok(&["completions", "fish"])
            .contains("complete -c conclave")
    );
    let man = user.ok(&["man"]);
    assert!(
        man.contains(".TH conclave 1") && man.contains("status"),
        "{man}"
    );
    let version = format!("conclave {}", env!("CARGO_PKG_VERSION"));
    for flag in [&["version"][..], &["-v"], &["--version"]] {
        assert_eq!(user.ok(flag).trim(), version);
    }
}

#[test]
fn tail_says_when_it_joined_you_and_when_since_is_past_the_end() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    alice.ok(&["channel", "create", "lobby"]);
    alice.ok(&["send", "lobby", "one"]);
    let (_tail, _lines, err) = bob.spawn(&["tail", "lobby", "--since", "5"]);
    let joined = err.wait_for(WAIT, |l| l.contains("you were not in #lobby"));
    assert!(joined.contains("joined it"), "{joined}");
    let past = err.wait_for(WAIT, |l| l.contains("no message after 5"));
    assert!(past.contains("the newest is 1"), "{past}");
}

#[test]
fn a_human_key_turns_the_verbs_into_agent_sessions_and_is_made_once() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    let out = alice.make_human_key("correct horse battery");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("alice/box has a human key"), "{said}");
    let sealed = std::fs::read_to_string(alice.config_path().join("human-key")).unwrap();
    assert!(sealed.starts_with("conclave human key v1"));

    // The verbs now sign in with the machine key as agents, and still work.
    alice.ok(&["channel", "create", "lobby"]);
    let who = alice.ok(&["who"]);
    assert!(
        who.contains("alice/box/cli") && who.contains("agent"),
        "{who}"
    );
    let again = alice.fails(&["key", "--human", "--passphrase-stdin"]);
    assert!(again.contains("has a human key already"), "{again}");
}

#[test]
fn a_list_of_addresses_reaches_the_one_that_answers_and_a_bad_one_is_named() {
    let server = Server::start();
    let (alice, bob) = two_users_in_general(&server);
    // Nothing listens on a port just freed.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}", listener.local_addr().unwrap())
    };
    let both = format!("{dead},{}", server.url());
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--server", &both]);
    err.wait_for(WAIT, |l| l.contains("tailing #general"));
    alice.ok(&["send", "general", "through the list", "--server", &both]);
    assert!(
        lines
            .wait_for(WAIT, |l| l.contains("through the list"))
            .contains("alice/box/cli")
    );
    let e = alice.fails(&[
        "send",
        "general",
        "nowhere",
        "--server",
        &format!("{dead},{dead}"),
    ]);
    assert!(e.contains(&format!("cannot reach {dead}")), "{e}");
    let e = alice.fails(&[
        "send",
        "general",
        "x",
        "--server",
        &format!("{},http://no", server.url()),
    ]);
    assert!(e.contains("`http://no` is not a server address"), "{e}");
}

/// The messages an agent's `unread` returns, by text.
fn unread(reader: &mut Mcp, id: u64) -> Vec<String> {
    reader.write(&format!(r#"{{"cmd":"unread","id":{id}}}"#));
    let reply = loop {
        let line = reader.next_line();
        if line["id"] == id {
            break line;
        }
    };
    assert_eq!(reply["ok"], true, "{reply}");
    let messages = reply["messages"].as_array().unwrap();
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn on_postgres_history_and_read_positions_survive_a_restart() {
    let Some(url) = postgres::test_url() else {
        return;
    };
    let mut server = Server::start_on_store(&postgres::fresh_schema_blocking(&url));
    let (alice, bob) = two_users_in_general(&server);
    alice.ok(&["send", "general", "m1"]);
    bob.ok(&["send", "general", "m2"]);
    let here = tempfile::tempdir().unwrap();
    let reader = ["--format", "jsonl", "--as", "reader", "--join", "general"];
    let mut agent = Mcp::spawn(&bob, here.path(), &reader);
    assert_eq!(agent.next_line()["event"], "ready");
    assert_eq!(unread(&mut agent, 1), ["m1", "m2"]);
    drop(agent);

    let status = server.stop("TERM");
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    server.restart();
    alice.ok(&["send", "general", "m3"]);

    // bob's reader left off at m2 before the restart, and the database remembers.
    let mut agent = Mcp::spawn(&bob, here.path(), &reader);
    assert_eq!(agent.next_line()["event"], "ready");
    assert_eq!(unread(&mut agent, 1), ["m3"]);
    let (_tail, lines, _err) = bob.spawn(&["tail", "general", "--since", "0", "--format", "json"]);
    let history: Vec<(i64, String)> = (0..3)
        .map(|_| {
            let v = json(&lines.wait_for(WAIT, |_| true));
            let text = v["text"].as_str().unwrap().to_owned();
            (v["seq"].as_i64().unwrap(), text)
        })
        .collect();
    assert_eq!(
        history,
        [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]
    );
}

#[test]
fn a_store_that_will_not_open_ends_serve_with_one_line() {
    let refused = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(!out.status.success(), "serve {args:?} should fail");
        assert!(out.stdout.is_empty(), "it must not say it listens");
        String::from_utf8(out.stderr).unwrap()
    };
    let bad = refused(&["--store", "postgres://bad"]);
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(
        bad.contains("`postgres://bad` is not a PostgreSQL URL"),
        "{bad}"
    );
    // Nothing listens on a port just freed; the password never shows.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://u:hunter2@127.0.0.1:{dead}/db");
    let unreachable = refused(&["--store", &url]);
    assert_eq!(unreachable.lines().count(), 1, "{unreachable}");
    assert!(
        unreachable.contains(&format!(
            "cannot reach the database postgres://u@127.0.0.1:{dead}/db"
        )),
        "{unreachable}"
    );
    assert!(!unreachable.contains("hunter2"), "{unreachable}");
    let both = refused(&["--store", "postgres://h/db", "--ephemeral"]);
    assert!(both.contains("cannot be used with"), "{both}");
}
