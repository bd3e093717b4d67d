//! Conversations with the real binary: replies, as `send --reply-to` posts them and `tail`
//! shows them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Server, User, json};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_reply_names_the_message_it_answers_and_tail_shows_it() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #general as"));
    alice.ok(&["send", "general", "ship it?"]);
    bob.ok(&["send", "general", "yes, ship it", "--reply-to", "1"]);
    let first = json(&lines.wait_for(WAIT, |l| l.contains("ship it?")));
    assert!(first.get("reply_to").is_none(), "{first}");
    let reply = json(&lines.wait_for(WAIT, |l| l.contains("yes, ship it")));
    assert_eq!((reply["seq"].clone(), reply["reply_to"].clone()), (2.into(), 1.into()));

    let (_plain, plain, plain_err) = alice.spawn(&["tail", "general", "--last", "1"]);
    plain_err.wait_for(WAIT, |l| l.contains("tailing"));
    let shown = plain.wait_for(WAIT, |l| l.contains("yes, ship it"));
    assert!(shown.contains("#general:2 bob/box/cli (re #general:1): yes, ship it"), "{shown}");

    let e = bob.fails(&["send", "general", "to the future", "--reply-to", "9"]);
    assert!(e.contains("#general has no message 9 to reply to"), "{e}");
}
