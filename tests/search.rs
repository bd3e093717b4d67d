//! Search end to end: `conclave search` against a real server whose database holds 100,000
//! messages, with filters, pages, marks, and a private channel that never shows to a
//! non-member.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, User, json};

/// When seeded message `seq` was sent: one a second, the newest a few hours ago (well within
/// the retention window, which the server enforces as it starts).
fn seeded_at(seq: i64) -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| chrono::Utc::now().timestamp_millis() - 200_000_000);
    start + seq * 1000
}

/// Messages written straight into the stopped server's database, through the same triggers
/// that index what the server stores, so the test starts from a big history in a second.
fn seed(server: &Server, channel_id: i64, count: i64, body: impl Fn(i64) -> String) {
    let db = rusqlite::Connection::open(server.data.path().join("conclave.db")).unwrap();
    db.execute_batch("BEGIN").unwrap();
    {
        let mut insert = db
            .prepare(
                "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind)
                 VALUES (?1, ?2, ?3, 1, 'alice/box/cli', ?4, ?5, 'human')",
            )
            .unwrap();
        for seq in 1..=count {
            let ts = seeded_at(seq);
            insert
                .execute(rusqlite::params![
                    channel_id,
                    seq,
                    ts,
                    format!("seed{seq}"),
                    body(seq)
                ])
                .unwrap();
        }
    }
    db.execute(
        "UPDATE channels SET last_seq = ?1 WHERE id = ?2",
        [count, channel_id],
    )
    .unwrap();
    db.execute_batch("COMMIT").unwrap();
}

fn channel_id(server: &Server, name: &str) -> i64 {
    let db = rusqlite::Connection::open(server.data.path().join("conclave.db")).unwrap();
    db.query_row("SELECT id FROM channels WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn search_finds_one_message_among_100000_and_never_a_private_one_for_a_stranger() {
    let mut server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    alice.ok(&["channel", "create", "secret", "--visibility", "private"]);
    let (general, secret) = (
        channel_id(&server, "general"),
        channel_id(&server, "secret"),
    );
    server.stop("TERM");
    seed(&server, general, 100_000, |seq| match seq {
        77_777 => "the rollback plan for Friday".to_owned(),
        _ => format!("status report number {seq}, all quiet"),
    });
    seed(&server, secret, 10, |_| {
        "the rollback plan, secret edition".to_owned()
    });
    server.restart();
    bob.ok(&["send", "general", "my rollback plan is better"]);

    // One word among 100,000 messages: newest first, the match marked.
    let found = alice.ok(&["search", "rollback"]);
    let lines: Vec<&str> = found.lines().collect();
    assert_eq!(lines.len(), 12, "{found}");
    assert!(
        lines[0].contains("#general:100001 bob/box/cli: my *rollback* plan is better"),
        "{found}"
    );
    assert!(
        found.contains("#general:77777 alice/box/cli: the *rollback* plan for Friday"),
        "{found}"
    );
    assert!(
        found.contains("#secret:"),
        "alice is a member of #secret: {found}"
    );

    // bob is not: no hit from #secret, and naming it says it does not exist.
    let found = bob.ok(&["search", "rollback", "--format", "json"]);
    let hits: Vec<serde_json::Value> = found.lines().map(json).collect();
    assert_eq!(hits.len(), 2, "{found}");
    assert!(hits.iter().all(|h| h["channel"] == "general"), "{found}");
    assert_eq!(hits[1]["seq"], 77_777);
    assert_eq!(hits[1]["marks"], serde_json::json!([[4, 12]]));
    let e = bob.fails(&["search", "rollback", "--channel", "secret"]);
    assert!(e.contains("there is no channel #secret"), "{e}");

    // Filters: sender, kind, time, channel; a phrase; pages beyond 100 hits.
    let by_bob = alice.ok(&["search", "plan", "--from", "bob"]);
    assert_eq!(by_bob.lines().count(), 1, "{by_bob}");
    let agents = alice.ok(&["search", "plan", "--kind", "agent"]);
    assert!(agents.is_empty(), "{agents}");
    let until = chrono::DateTime::from_timestamp_millis(seeded_at(80_000)).unwrap();
    let until = until.to_rfc3339();
    let old = alice.ok(&[
        "search",
        "rollback",
        "--channel",
        "general",
        "--until",
        &until,
    ]);
    assert_eq!(old.lines().count(), 1, "{old}");
    let phrase = alice.ok(&["search", "\"report number 99999\""]);
    assert_eq!(phrase.lines().count(), 1, "{phrase}");
    let many = alice.ok(&["search", "quiet", "--limit", "250", "--format", "json"]);
    let seqs: Vec<u64> = many
        .lines()
        .map(|l| json(l)["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 250);
    assert_eq!(seqs[0], 100_000);
    assert!(
        seqs.windows(2)
            .all(|w| w[0] == w[1] + 1 || w[1] == 77_777 - 1),
        "{seqs:?}"
    );
    let e = alice.fails(&["search", "  "]);
    assert!(e.contains("at least one word"), "{e}");
}
