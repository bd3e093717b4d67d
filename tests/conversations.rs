//! Conversations with the real binary: replies, as `send --reply-to` posts them and `tail`
//! shows them.
#![allow(clippy::unwrap_used)]

mod agent_support;
mod common;

use std::time::Duration;

use agent_support::{Mcp, setup};
use common::{Server, json};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_reply_names_the_message_it_answers_and_tail_shows_it() {
    let server = Server::start();
    let (alice, bob, _project) = setup(&server);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    alice.ok(&["send", "general", "ship it?"]);
    bob.ok(&["send", "general", "yes, ship it", "--reply-to", "1"]);
    let first = json(&lines.wait_for(WAIT, |l| l.contains("ship it?")));
    assert!(first.get("reply_to").is_none(), "{first}");
    let reply = json(&lines.wait_for(WAIT, |l| l.contains("yes, ship it")));
    assert_eq!(
        (reply["seq"].clone(), reply["reply_to"].clone()),
        (2.into(), 1.into())
    );

    let (_plain, plain, plain_err) = alice.spawn(&["tail", "general", "--last", "1"]);
    plain_err.wait_for(WAIT, |l| l.contains("tailing"));
    let shown = plain.wait_for(WAIT, |l| l.contains("yes, ship it"));
    assert!(
        shown.contains("#general:2 bob/box/cli (re #general:1): yes, ship it"),
        "{shown}"
    );

    let e = bob.fails(&["send", "general", "to the future", "--reply-to", "9"]);
    assert!(e.contains("#general has no message 9 to reply to"), "{e}");
}

#[test]
fn an_agent_replies_and_hears_replies() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    let mut agent = Mcp::spawn(
        &alice,
        project.path(),
        &["--format", "jsonl", "--as", "bot", "--join", "general"],
    );
    assert_eq!(agent.next_line()["event"], "ready");
    bob.ok(&["send", "general", "who broke the build?"]);
    bob.ok(&["send", "general", "never mind", "--reply-to", "1"]);
    let heard = agent.next_where(|v| v["event"] == "message" && v["text"] == "never mind");
    assert_eq!(heard["reply_to"], 1);
    agent.write(r#"{"cmd":"send","channel":"general","text":"not me","reply_to":1,"id":7}"#);
    let sent = agent.next_where(|v| v["id"] == 7);
    assert_eq!(
        (sent["ok"].clone(), sent["seq"].clone()),
        (true.into(), 3.into())
    );
    let (_tail, lines, err) = alice.spawn(&["tail", "general", "--last", "1", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    let reply = json(&lines.wait_for(WAIT, |l| l.contains("not me")));
    assert_eq!(reply["reply_to"], 1);
}

#[test]
fn edits_deletes_and_reactions_reach_a_client_that_was_away_in_order_once() {
    let server = Server::start();
    let (alice, bob, _project) = setup(&server);
    alice.ok(&["send", "general", "ship it?"]);
    bob.ok(&["send", "general", "yes, ship it", "--reply-to", "1"]);
    // While nobody tails: an edit, a reaction, a delete, and refusals.
    assert_eq!(
        alice.ok(&["edit", "general", "1", "ship it today?"]).trim(),
        "#general 3"
    );
    bob.ok(&["react", "general", "1", "👍"]);
    let e = bob.fails(&["delete", "general", "1"]);
    assert!(e.contains("only its sender and the moderators"), "{e}");
    bob.ok(&["delete", "general", "2"]);
    let e = bob.fails(&["edit", "general", "1", "mine now"]);
    assert!(e.contains("only its sender may edit #general:1"), "{e}");
    let e = alice.fails(&["react", "general", "1", "two words"]);
    assert!(e.contains("a reaction is one emoji or word"), "{e}");

    // A client resuming after seq 1 hears each event once, in its place.
    let (_tail, lines, err) = alice.spawn(&["tail", "general", "--since", "1", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let v = json(&lines.wait_for(WAIT, |_| true));
        seen.push((
            v["seq"].as_u64().unwrap(),
            v["kind"].as_str().unwrap().to_owned(),
            v.get("target").and_then(|t| t.as_u64()),
        ));
        if v["seq"] == 2 {
            assert_eq!(v["deleted"], true, "{v}");
            assert_eq!(v["text"], "", "{v}");
        }
    }
    assert_eq!(
        seen,
        [
            (2, "message".into(), None),
            (3, "edit".into(), Some(1)),
            (4, "react".into(), Some(1)),
            (5, "delete".into(), Some(2)),
        ]
    );

    // History shows the message as it now stands.
    let (_plain, plain, plain_err) = bob.spawn(&["tail", "general", "--last", "5"]);
    plain_err.wait_for(WAIT, |l| l.contains("tailing"));
    let first = plain.wait_for(WAIT, |l| l.contains("#general:1 "));
    assert!(first.ends_with("ship it today? (edited) [👍 1]"), "{first}");
    let gone = plain.wait_for(WAIT, |l| l.contains("#general:2 "));
    assert!(gone.ends_with("(re #general:1): (deleted)"), "{gone}");
}

#[test]
fn an_agent_hears_edits_and_deletes_and_reacts_and_edits_by_tool() {
    let server = Server::start();
    let (alice, bob, project) = setup(&server);
    let mut agent = Mcp::spawn(
        &alice,
        project.path(),
        &["--format", "jsonl", "--as", "bot", "--join", "general"],
    );
    assert_eq!(agent.next_line()["event"], "ready");
    bob.ok(&["send", "general", "who broke the biuld?"]);
    bob.ok(&["edit", "general", "1", "who broke the build?"]);
    bob.ok(&["delete", "general", "1"]);
    let mut next_message = || agent.next_where(|v| v["event"] == "message");
    assert!(next_message().get("edited").is_none());
    let edit = next_message();
    assert_eq!(
        (edit["edited"].clone(), edit["text"].clone()),
        (1.into(), "who broke the build?".into())
    );
    assert_eq!(next_message()["deleted"], 1);

    bob.ok(&["send", "general", "deploy at 5"]);
    agent.write(r#"{"cmd":"react","channel":"general","seq":4,"reaction":"seen","id":1}"#);
    agent.write(r#"{"cmd":"send","channel":"general","text":"on it","id":2}"#);
    agent.write(r#"{"cmd":"edit","channel":"general","seq":6,"text":"on it, at 5","id":3}"#);
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 3 {
        let v = agent.next_line();
        if let Some(id) = v["id"].as_u64() {
            answered.insert(id, v);
        }
    }
    assert!(answered.values().all(|v| v["ok"] == true), "{answered:?}");
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--last", "7", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    let deploy = json(&lines.wait_for(WAIT, |l| l.contains("deploy at 5")));
    assert_eq!(deploy["reactions"][0]["reaction"], "seen", "{deploy}");
    assert_eq!(deploy["reactions"][0]["users"][0], "alice", "{deploy}");
    let mine = json(&lines.wait_for(WAIT, |l| l.contains(r#""seq":6"#)));
    assert_eq!(mine["text"], "on it, at 5", "{mine}");
    assert!(mine.get("edited").is_some(), "{mine}");
}

#[test]
fn a_direct_message_reaches_both_users_sessions_and_survives_a_restart() {
    let mut server = Server::start();
    let (alice, bob, project) = setup(&server);
    // A session of bob's is live before the conversation exists: it is told. (An agent joins
    // one only when told to; a program hears of it and may.)
    let mut agent = Mcp::spawn(&bob, project.path(), &["--format", "jsonl", "--as", "bot"]);
    assert_eq!(agent.next_line()["event"], "ready");
    assert_eq!(alice.ok(&["dm", "bob", "hi bob"]).trim(), "#alice+bob 1");
    let told = agent.next_where(|v| v["event"] == "opened");
    assert_eq!(told["channel"], "alice+bob");
    bob.ok(&["send", "@alice", "hi alice"]);
    let follow = |who: &common::User, other: &str| {
        let (tail, lines, err) = who.spawn(&["tail", other, "--since", "0", "--format", "json"]);
        err.wait_for(WAIT, |l| l.contains("tailing #alice+bob"));
        let texts: Vec<String> = (0..2)
            .map(|_| {
                json(&lines.wait_for(WAIT, |_| true))["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        drop(tail);
        texts
    };
    assert_eq!(follow(&alice, "@bob"), ["hi bob", "hi alice"]);
    server.stop("TERM");
    server.restart();
    assert_eq!(follow(&bob, "@alice"), ["hi bob", "hi alice"]);

    // Nobody else reads it, writes to it, or governs it; nobody takes its name.
    let carol = common::User::register("carol", &server);
    for verb in [&["tail", "alice+bob"][..], &["send", "alice+bob", "me too"]] {
        let e = carol.fails(verb);
        assert!(e.contains("there is no channel #alice+bob"), "{e}");
    }
    for verb in [
        &["channel", "topic", "alice+bob", "ours"][..],
        &["audit", "alice+bob"],
    ] {
        let e = alice.fails(verb);
        assert!(e.contains("direct conversation: nobody governs it"), "{e}");
    }
    let e = carol.fails(&["channel", "create", "alice+carol"]);
    assert!(e.contains("starts with its first message"), "{e}");
    let e = alice.fails(&["dm", "alice", "me?"]);
    assert!(e.contains("@alice is you"), "{e}");
    let e = alice.fails(&["dm", "nobody", "hello?"]);
    assert!(e.contains("there is no user nobody"), "{e}");
}

#[test]
fn moderators_pin_a_message_and_channel_info_lists_it() {
    let server = Server::start();
    let (alice, bob, _project) = setup(&server);
    bob.ok(&["send", "general", "deploys freeze on Friday"]);
    let e = bob.fails(&["channel", "pin", "general", "1"]);
    assert!(
        e.contains("only moderators and the owner of #general may pin messages"),
        "{e}"
    );
    assert_eq!(
        alice.ok(&["channel", "pin", "general", "1"]).trim(),
        "#general: pinned message 1"
    );
    let info = bob.ok(&["channel", "info", "general"]);
    assert!(
        info.contains("pinned       #general:1 bob/box/cli: deploys freeze on Friday"),
        "{info}"
    );
    alice.ok(&["channel", "pin", "general", "1", "--undo"]);
    let info = bob.ok(&["channel", "info", "general"]);
    assert!(!info.contains("pinned"), "{info}");
}
