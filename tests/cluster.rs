//! Several `conclave serve` instances on one PostgreSQL store and one NATS bus: users on
//! different instances talk as if there were one server, and losing an instance or the bus
//! loses no acknowledged message. Needs `CONCLAVE_TEST_POSTGRES` and `CONCLAVE_TEST_NATS`
//! (`scripts/test-services.sh start`); skips without them unless CI requires them.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Lines, Server, User, json, nats, postgres};

const WAIT: Duration = Duration::from_secs(30);

/// Room for the load the tests put on the instances, which the defaults rightly refuse.
const GENEROUS: [&str; 6] = [
    "--agent-turns",
    "0",
    "--agent-sends-per-minute",
    "1000000",
    "--human-sends-per-minute",
    "1000000",
];

/// A fresh store and the bus, or `None` to skip.
fn services() -> Option<(String, String)> {
    let store = postgres::test_url()?;
    let bus = nats::test_url()?;
    Some((postgres::fresh_schema_blocking(&store), bus))
}

fn cluster(store: &str, bus: &str, n: usize) -> Vec<Server> {
    (0..n)
        .map(|_| Server::start_in_cluster(store, bus, &GENEROUS))
        .collect()
}

/// Every instance's URL, starting with instance `first`'s.
fn urls_from(servers: &[Server], first: usize) -> String {
    let n = servers.len();
    (0..n)
        .map(|i| servers[(first + i) % n].url())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads JSON message lines until `n` messages arrived; returns seq → text.
fn messages(lines: &Lines, n: usize) -> BTreeMap<u64, String> {
    let mut got = BTreeMap::new();
    let mut order = Vec::new();
    while got.len() < n {
        let line = json(&lines.wait_for(WAIT, |l| l.contains("\"message\"")));
        let seq = line["seq"].as_u64().unwrap();
        order.push(seq);
        let text = line["text"].as_str().unwrap().to_owned();
        assert!(got.insert(seq, text).is_none(), "seq {seq} arrived twice");
    }
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order: {order:?}"
    );
    got
}

#[test]
fn users_on_three_instances_share_channels_presence_and_whispers() {
    let Some((store, bus)) = services() else {
        return;
    };
    let mut servers = cluster(&store, &bus, 3);
    let alice = User::register("alice", &servers[0]);
    let bob = User::register("bob", &servers[1]);
    let carol = User::register("carol", &servers[2]);
    alice.ok(&["channel", "create", "general"]);
    for user in [&alice, &bob, &carol] {
        user.ok(&["join", "general"]);
    }
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));

    // Sent through A and C in turn, seen on B once each and in order.
    for i in 1..=10 {
        let (user, text) = if i % 2 == 0 {
            (&carol, format!("from c {i}"))
        } else {
            (&alice, format!("from a {i}"))
        };
        let acked = user.ok(&["send", "general", &text]);
        assert_eq!(acked.trim(), format!("#general {i}"));
    }
    let got = messages(&lines, 10);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(got[&3], "from a 3");
    assert_eq!(got[&4], "from c 4");

    // `who` on A lists the session on B; a whisper from C reaches it.
    let who = alice.ok(&["who", "general"]);
    assert!(who.contains("bob/box/tail"), "{who}");
    let everyone = carol.ok(&["who"]);
    assert!(everyone.contains("bob/box/tail"), "{everyone}");
    carol.ok(&["whisper", "bob/box/tail", "psst"]);
    let whisper = json(&lines.wait_for(WAIT, |l| l.contains("\"whisper\"")));
    // Her `who` a moment before may still hold `cli`: a one-shot then takes `cli-2`.
    let from = whisper["from"].as_str().unwrap();
    assert!(from.starts_with("carol/box/cli"), "{whisper}");
    assert_eq!(whisper["text"], "psst");
    let e = carol.fails(&["whisper", "bob/box/nobody", "hi"]);
    assert!(e.contains("bob/box/nobody is not online"), "{e}");

    // A second tail of bob's, on C, while the first lives on B: the handle takes a suffix
    // instead of pushing the first one off.
    let c_url = servers[2].url();
    let (mut second, second_lines, second_err) =
        bob.spawn(&["tail", "general", "--format", "json", "--server", &c_url]);
    let ready = second_err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    assert!(ready.ends_with("bob/box/tail-2"), "{ready}");
    alice.ok(&["send", "general", "to both"]);
    assert_eq!(messages(&lines, 1)[&11], "to both");
    assert_eq!(messages(&second_lines, 1)[&11], "to both");

    // A kick from A ends the session on B at once.
    alice.ok(&["channel", "kick", "general", "bob/box/tail-2"]);
    second_err.wait_for(WAIT, |l| l.contains("you no longer receive #general"));
    let deadline = Instant::now() + WAIT;
    while second.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the kicked tail did not end");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Presence crosses instances, and an instance that dies takes its sessions with it.
    let (_watch, _, watch_err) = alice.spawn(&["tail", "general"]);
    watch_err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    let (_carols, _, carol_err) = carol.spawn(&["tail", "general"]);
    carol_err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    watch_err.wait_for(WAIT, |l| l == "* carol/box/tail is online #general");
    servers[2].stop("KILL");
    watch_err.wait_for(WAIT, |l| l == "* carol/box/tail went offline #general");
    let who = alice.ok(&["who", "general"]);
    assert!(!who.contains("carol/box/tail"), "{who}");
    assert!(who.contains("bob/box/tail"), "{who}");
}

#[test]
fn killing_an_instance_under_load_loses_no_acknowledged_message() {
    let Some((store, bus)) = services() else {
        return;
    };
    let mut servers = cluster(&store, &bus, 3);
    let owner = User::register("owner", &servers[1]);
    owner.ok(&["channel", "create", "load"]);
    let senders: Vec<User> = (0..10)
        .map(|i| {
            let user = User::register(&format!("sender{i}"), &servers[1]);
            user.ok(&["join", "load"]);
            user
        })
        .collect();
    let (_tail, lines, err) = owner.spawn(&[
        "tail",
        "load",
        "--format",
        "json",
        "--server",
        &urls_from(&servers, 1),
    ]);
    err.wait_for(WAIT, |l| l.contains("tailing #load as"));

    const EACH: usize = 12;
    let victim_pid = servers[0].pid();
    let acked: Vec<Vec<(u64, String)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(i, user)| {
                // Most senders start on the instance about to die.
                let urls = urls_from(&servers, if i < 7 { 0 } else { 2 });
                scope.spawn(move || {
                    let mut acked = Vec::new();
                    for n in 0..EACH {
                        let text = format!("{} #{n}", user.name);
                        let out = user.run(&["send", "load", &text, "--server", &urls]);
                        if out.status.success() {
                            let said = String::from_utf8(out.stdout).unwrap();
                            let seq = said.trim().rsplit(' ').next().unwrap().parse().unwrap();
                            acked.push((seq, text));
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &victim_pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    servers[0].exited();
    let acked: Vec<(u64, String)> = acked.into_iter().flatten().collect();
    assert!(
        acked.len() >= EACH * 5,
        "most sends should succeed: {}",
        acked.len()
    );

    // Everything acknowledged is stored once, under the seq it was acknowledged with, with
    // no gap; the tail that was on a surviving instance saw all of it in order.
    let newest = acked.iter().map(|(seq, _)| *seq).max().unwrap();
    let seen = messages(&lines, usize::try_from(newest).unwrap());
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=newest).collect::<Vec<_>>(),
        "a gap in the seqs"
    );
    for (seq, text) in &acked {
        assert_eq!(seen.get(seq), Some(text), "acknowledged message {seq} lost");
    }
    let mut texts: Vec<&String> = seen.values().collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), seen.len(), "a message was stored twice");
}

#[test]
fn the_bus_going_away_and_back_loses_nothing() {
    let Some(store) = postgres::test_url() else {
        return;
    };
    let store = postgres::fresh_schema_blocking(&store);
    let mut bus = nats::Private::start();
    let servers = cluster(&store, &bus.url(), 2);
    let alice = User::register("alice", &servers[0]);
    let bob = User::register("bob", &servers[1]);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));

    let send = |i: u64| {
        let acked = alice.ok(&["send", "general", &format!("m{i}")]);
        assert_eq!(acked.trim(), format!("#general {i}"));
    };
    for i in 1..=5 {
        send(i);
    }
    assert_eq!(messages(&lines, 5).len(), 5);
    bus.kill();
    // Without the bus the instances still check the database, so messages keep arriving,
    // later than usual.
    let started = Instant::now();
    for i in 6..=10 {
        send(i);
    }
    let during = messages(&lines, 5);
    assert_eq!(
        during.keys().copied().collect::<Vec<_>>(),
        (6..=10).collect::<Vec<_>>()
    );
    assert!(started.elapsed() < WAIT);
    bus.restart();
    for i in 11..=15 {
        send(i);
    }
    let after = messages(&lines, 5);
    assert_eq!(
        after.keys().copied().collect::<Vec<_>>(),
        (11..=15).collect::<Vec<_>>()
    );
}

#[test]
fn an_instance_must_run_as_its_store_s_other_instances_do() {
    let Some((store, bus)) = services() else {
        return;
    };
    let refused = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "serve {args:?} should fail");
        let said = String::from_utf8(out.stderr).unwrap();
        assert_eq!(said.lines().count(), 1, "{said}");
        said
    };
    let said = refused(&["--bus", &bus, "--ephemeral"]);
    assert!(
        said.contains("--bus links instances that share one PostgreSQL store"),
        "{said}"
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let said = refused(&[
        "--store",
        &store,
        "--bus",
        &format!("nats://127.0.0.1:{dead}"),
    ]);
    assert!(said.contains("cannot reach the NATS server"), "{said}");

    // Alone on the store: a second instance is refused, with or without a bus.
    let mut alone = Server::start_on_store(&store);
    let said = refused(&["--store", &store]);
    assert!(said.contains("without a bus"), "{said}");
    let said = refused(&["--store", &store, "--bus", &bus]);
    assert!(said.contains("without a bus"), "{said}");
    // The claim ends with the instance, however it ends.
    alone.stop("KILL");
    let _first = Server::start_in_cluster(&store, &bus, &[]);
    let _second = Server::start_in_cluster(&store, &bus, &[]);
    let said = refused(&["--store", &store]);
    assert!(said.contains("with a bus"), "{said}");
}

#[test]
fn the_database_going_away_and_back_fails_sends_clearly_and_loses_nothing() {
    let Some((store, bus)) = services() else {
        return;
    };
    let config: tokio_postgres::Config = store.parse().unwrap();
    let target = match (&config.get_hosts()[0], config.get_ports()[0]) {
        (tokio_postgres::config::Host::Tcp(host), port) => format!("{host}:{port}"),
        other => panic!("the test database must be on TCP, not {other:?}"),
    };
    let proxy = common::LosableProxy::start(&target);
    let through_proxy = store.replacen(&target, &proxy.addr, 1);
    let servers = cluster(&through_proxy, &bus, 2);
    let alice = User::register("alice", &servers[0]);
    let bob = User::register("bob", &servers[1]);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));

    let mut acked = Vec::new();
    for i in 1..=3 {
        let said = alice.ok(&["send", "general", &format!("before {i}")]);
        acked.push(said.trim().to_owned());
    }
    proxy.cut();
    let e = alice.fails(&["send", "general", "while it is down"]);
    assert!(e.contains("database"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    proxy.restore();
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let out = alice.run(&["send", "general", "after"]);
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "the instances did not recover");
        std::thread::sleep(Duration::from_millis(200));
    };
    acked.push(after.trim().to_owned());
    assert_eq!(
        acked,
        ["#general 1", "#general 2", "#general 3", "#general 4"]
    );
    let seen = messages(&lines, 4);
    assert_eq!(seen[&3], "before 3");
    assert_eq!(seen[&4], "after");

    // The instances take their claims on the database again; then one without a bus is
    // refused as before.
    let deadline = Instant::now() + WAIT;
    while shared_claims(&store) < 2 {
        assert!(Instant::now() < deadline, "the claims were not taken again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = std::process::Command::new("timeout")
        .args(["20", common::BIN, "serve", "--bind", "127.0.0.1:0"])
        .args(["--store", &through_proxy])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(said.contains("with a bus"), "{said}");
}

/// How many instances hold a claim on the schema of `store` (the advisory lock `serve` takes:
/// two keys, the second the schema's hash).
fn shared_claims(store: &str) -> i64 {
    let rows = store_rows(
        store,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
         AND mode = 'ShareLock' AND granted
         AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)",
        &[],
    );
    rows[0].get(0)
}

/// The rows `sql` returns on the test database `store` (its schema first on the path).
fn store_rows(
    store: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<tokio_postgres::Row> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(store, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.query(sql, params).await.unwrap()
    })
}

#[test]
fn a_session_whose_path_was_claimed_elsewhere_may_not_post_and_ends() {
    let Some((store, bus)) = services() else {
        return;
    };
    let servers = cluster(&store, &bus, 2);
    let alice = User::register("alice", &servers[0]);
    alice.ok(&["channel", "create", "general"]);
    let project = tempfile::tempdir().unwrap();
    let args = ["--format", "jsonl", "--as", "bot", "--join", "general"];
    let mut agent = agent_support::Mcp::spawn(&alice, project.path(), &args);
    assert_eq!(agent.next_line()["event"], "ready");
    let reply = |agent: &mut agent_support::Mcp, id: u64| -> serde_json::Value {
        agent.write(&format!(
            r#"{{"cmd":"send","channel":"general","text":"m{id}","id":{id}}}"#
        ));
        agent.next_where(|v| v["id"] == id)
    };
    assert_eq!(reply(&mut agent, 1)["ok"], true);
    // As if the path had signed in on an instance this one cannot hear (a partition).
    bump_claim(&store, "alice/box/bot");
    // The next post is refused, and the session is over, as a replaced one is on a single
    // server: the link says so and does not fight for the path. (The refusal and the close
    // race; the close always comes, with the reason.)
    agent.write(r#"{"cmd":"send","channel":"general","text":"m2","id":2}"#);
    let closed = loop {
        let v = agent.next_line();
        if v["id"] == 2 {
            assert_eq!(v["ok"], false, "{v}");
        }
        if v["event"] == "closed" {
            break v;
        }
    };
    assert!(
        closed["reason"]
            .as_str()
            .unwrap()
            .contains("connected again from elsewhere"),
        "{closed}"
    );
}

/// Raises the generation of a path's claim in the store, as another sign-in would.
fn bump_claim(store: &str, path: &str) {
    let bumped = store_rows(
        store,
        "UPDATE session_claims SET generation = generation + 1 WHERE path = $1 RETURNING path",
        &[&path],
    );
    assert_eq!(bumped.len(), 1, "no claim on {path}");
}

#[test]
fn an_admin_on_one_instance_counts_the_sessions_of_all() {
    let Some((store, bus)) = services() else {
        return;
    };
    let flags = [GENEROUS.as_slice(), &["--admin", "root"]].concat();
    let a = Server::start_in_cluster(&store, &bus, &flags);
    let b = Server::start_in_cluster(&store, &bus, &flags);
    let root = User::register("root", &a);
    let alice = User::register("alice", &a);
    alice.ok(&["channel", "create", "general"]);
    let b_url = b.url();
    let (_tail, _, err) = alice.spawn(&["tail", "general", "--server", &b_url]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    // Her one-shot `channel create` on A may take a moment to be gone: wait for one session.
    let deadline = Instant::now() + WAIT;
    loop {
        let users = root.ok(&["admin", "users"]);
        let alice_row = users.lines().find(|r| r.starts_with("alice")).unwrap();
        let online = alice_row.split_whitespace().nth(2).unwrap().to_owned();
        if online == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice's tail on the other instance should count once: {users}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_direct_conversation_opened_on_one_instance_is_told_to_sessions_on_another() {
    let Some((store, bus)) = services() else {
        return;
    };
    let servers = cluster(&store, &bus, 2);
    let alice = User::register("alice", &servers[0]);
    let bob = User::register("bob", &servers[1]);
    let project = tempfile::tempdir().unwrap();
    let mut program =
        agent_support::Mcp::spawn(&bob, project.path(), &["--format", "jsonl", "--as", "bot"]);
    assert_eq!(program.next_line()["event"], "ready");
    assert_eq!(alice.ok(&["dm", "bob", "across"]).trim(), "#alice+bob 1");
    let told = program.next_where(|v| v["event"] == "opened");
    assert_eq!(told["channel"], "alice+bob");
    let (_tail, lines, err) = bob.spawn(&["tail", "@alice", "--since", "0", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #alice+bob"));
    let said = json(&lines.wait_for(WAIT, |_| true));
    assert_eq!(said["text"], "across");
}
