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
    let heard = loop {
        let v = agent.next_line();
        if v["event"] == "message" && v["text"] == "never mind" {
            break v;
        }
    };
    assert_eq!(heard["reply_to"], 1);
    agent.write(r#"{"cmd":"send","channel":"general","text":"not me","reply_to":1,"id":7}"#);
    let sent = loop {
        let v = agent.next_line();
        if v["id"] == 7 {
            break v;
        }
    };
    assert_eq!(
        (sent["ok"].clone(), sent["seq"].clone()),
        (true.into(), 3.into())
    );
    let (_tail, lines, err) = alice.spawn(&["tail", "general", "--last", "1", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    let reply = json(&lines.wait_for(WAIT, |l| l.contains("not me")));
    assert_eq!(reply["reply_to"], 1);
}
