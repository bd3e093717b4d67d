//! End-to-end: governing channels and the server with the real `conclave` binary — every act,
//! the refusals people meet (each one line naming the rule), and what an act does to a live
//! `tail`. That agent sessions may not moderate is checked in `governance.rs`, since the CLI
//! cannot speak as one.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ChildGuard, Lines, Server, User, json};

const WAIT: Duration = Duration::from_secs(20);

/// Waits for a stderr line containing `said`, then for the process to end, and returns its
/// exit status.
fn ends_saying(child: &mut ChildGuard, err: &Lines, said: &str) -> std::process::ExitStatus {
    err.wait_for(WAIT, |l| l.contains(said));
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {said:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `user` tails `channel` and is receiving it.
fn tailing(user: &User, channel: &str) -> (ChildGuard, Lines) {
    let (child, _out, err) = user.spawn(&["tail", channel]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    (child, err)
}

/// alice, bob and carol on `server`; alice creates `channel` with `visibility`.
fn three_users(server: &Server, channel: &str, visibility: &str) -> (User, User, User) {
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|name| User::register(name, server));
    alice.ok(&["channel", "create", channel, "--visibility", visibility]);
    (alice, bob, carol)
}

#[test]
fn moderators_kick_ban_and_mute_and_members_are_told_the_rule() {
    let server = Server::start();
    let (alice, bob, carol) = three_users(&server, "ops", "public");
    bob.ok(&["join", "ops"]);
    carol.ok(&["join", "ops"]);

    let e = bob.fails(&["channel", "kick", "ops", "alice"]);
    assert_eq!(
        e.trim(),
        "conclave: only moderators and the owner of #ops may kick"
    );
    assert_eq!(
        alice
            .ok(&["channel", "role", "ops", "bob", "moderator"])
            .trim(),
        "#ops: made bob moderator"
    );
    let e = bob.fails(&["channel", "kick", "#ops", "alice"]);
    assert_eq!(
        e.trim(),
        "conclave: alice is owner of #ops; you cannot kick them"
    );

    // Mute: carol reads but may not post, until unmuted.
    let said = bob.ok(&["channel", "mute", "ops", "carol", "--for", "10m"]);
    assert_eq!(said.trim(), "#ops: muted carol for 10m");
    let e = carol.fails(&["send", "ops", "hello?"]);
    assert!(e.contains("you are muted in #ops for"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    let info = carol.ok(&["channel", "info", "ops"]);
    assert!(info.contains("member, muted for"), "{info}");
    bob.ok(&["channel", "unmute", "ops", "carol"]);
    carol.ok(&["send", "ops", "back"]);

    // A kick ends carol's live tail and her membership.
    let (mut tail, err) = tailing(&carol, "ops");
    let said = bob.ok(&["channel", "kick", "ops", "carol", "--reason", "looping"]);
    assert_eq!(said.trim(), "#ops: kicked carol (looping)");
    let status = ends_saying(&mut tail, &err, "you no longer receive #ops");
    assert!(!status.success());

    // One session by path: only that tail goes.
    let (mut tail, err) = tailing(&carol, "ops");
    bob.ok(&["channel", "kick", "ops", "carol/box/tail"]);
    assert!(!ends_saying(&mut tail, &err, "you no longer receive #ops").success());

    // A ban ends the tail too, and keeps carol out until it is lifted.
    let (mut tail, err) = tailing(&carol, "ops");
    let said = alice.ok(&["channel", "ban", "ops", "carol", "--for", "1h"]);
    assert_eq!(said.trim(), "#ops: banned carol for 1h");
    assert!(!ends_saying(&mut tail, &err, "you no longer receive #ops").success());
    let e = carol.fails(&["join", "ops"]);
    assert!(e.contains("you are banned from #ops for"), "{e}");
    alice.ok(&["channel", "unban", "ops", "carol"]);
    carol.ok(&["join", "ops"]);

    // The audit log: newest first, for moderators; a plain member is refused.
    let log = bob.ok(&["audit", "ops", "--last", "50"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains("alice/box/cli  unban  #ops  carol  unbanned carol"),
        "{log}"
    );
    assert!(
        log.contains("  bob/box/cli  kick  #ops  carol  kicked carol (looping)"),
        "{log}"
    );
    assert!(
        log.contains("mute  #ops  carol  muted carol for 10m"),
        "{log}"
    );
    let last_two = bob.ok(&["audit", "ops", "--last", "2", "--format", "json"]);
    let entries: Vec<_> = last_two.lines().map(json).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "unban");
    assert_eq!(entries[1]["action"], "ban");
    assert_eq!(entries[1]["channel"], "ops");
    assert!(entries[0]["id"].as_u64() > entries[1]["id"].as_u64());
    let e = carol.fails(&["audit", "ops"]);
    assert_eq!(
        e.trim(),
        "conclave: only moderators and the owner of #ops may read its audit log"
    );
}

#[test]
fn topic_brakes_rename_archive_and_delete() {
    let server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "ops"]);
    bob.ok(&["join", "ops"]);
    alice.ok(&["send", "ops", "before the rename"]);

    alice.ok(&["channel", "topic", "ops", "deploys only"]);
    assert_eq!(bob.ok(&["channel", "topic", "ops"]).trim(), "deploys only");
    let e = bob.fails(&["channel", "topic", "ops", "mine now"]);
    assert!(
        e.contains("only moderators and the owner of #ops may"),
        "{e}"
    );
    alice.ok(&["channel", "set", "ops", "agent-turns", "5"]);
    alice.ok(&["channel", "set", "ops", "reply-mode", "mention"]);
    let said = alice.ok(&["channel", "set", "ops", "slow", "30"]);
    assert_eq!(said.trim(), "#ops: set slow 30s");
    let info = bob.ok(&["channel", "info", "ops"]);
    for shown in [
        "deploys only",
        "owner        alice",
        "you          member",
        "agent turns  5 in a row",
        "reply mode   mention",
        "every 30s",
    ] {
        assert!(info.contains(shown), "{shown:?} in {info}");
    }

    // Rename: the history comes along.
    let said = alice.ok(&["channel", "rename", "ops", "deploys"]);
    assert_eq!(said.trim(), "#ops: renamed the channel to #deploys");
    let (_tail, out, _err) = bob.spawn(&["tail", "deploys", "--last", "5"]);
    let first = out.wait_for(WAIT, |_| true);
    assert!(
        first.contains("#deploys:1 alice/box/cli: before the rename"),
        "{first}"
    );

    // Archive: read-only until undone.
    alice.ok(&["channel", "archive", "deploys"]);
    let e = bob.fails(&["send", "deploys", "hi"]);
    assert!(e.contains("#deploys is archived"), "{e}");
    let said = alice.ok(&["channel", "archive", "deploys", "--undo"]);
    assert_eq!(said.trim(), "#deploys: unarchived the channel");
    bob.ok(&["send", "deploys", "hi"]);

    // Delete asks for the name on a terminal; without one, only --yes deletes.
    let e = alice.fails(&["channel", "delete", "deploys"]);
    assert!(
        e.contains("stdin is not a terminal") && e.contains("--yes"),
        "{e}"
    );
    bob.ok(&["send", "deploys", "still here"]);
    let said = alice.ok(&["channel", "delete", "deploys", "--yes"]);
    assert_eq!(said.trim(), "#deploys: deleted the channel");
    let e = bob.fails(&["send", "deploys", "anyone?"]);
    assert!(e.contains("there is no channel #deploys"), "{e}");
}

#[test]
fn invites_open_private_channels_as_often_as_they_say_and_never_to_the_banned() {
    let server = Server::start();
    let (alice, bob, carol) = three_users(&server, "hideout", "private");

    // A private channel looks like no channel to anyone outside it.
    for probe in [&["channel", "info", "hideout"][..], &["join", "hideout"]] {
        let e = carol.fails(probe);
        assert_eq!(e.trim(), "conclave: there is no channel #hideout");
    }

    let said = alice.ok(&["channel", "invite", "hideout", "--uses", "1", "--ttl", "1h"]);
    let token = said.lines().next().unwrap().trim().to_owned();
    assert!(
        said.contains(&format!("conclave join hideout --invite {token}")),
        "{said}"
    );
    bob.ok(&["join", "hideout", "--invite", &token]);
    let e = carol.fails(&["join", "hideout", "--invite", &token]);
    assert!(e.contains("that invite to #hideout is not valid"), "{e}");

    // A ban outweighs an invite.
    alice.ok(&["channel", "ban", "hideout", "carol", "--reason", "spam"]);
    let said = alice.ok(&["channel", "invite", "hideout", "--uses", "5"]);
    let token = said.lines().next().unwrap().trim().to_owned();
    let e = carol.fails(&["join", "hideout", "--invite", &token]);
    assert_eq!(
        e.trim(),
        "conclave: you are banned from #hideout for good: spam"
    );

    // The open tokens are listed for moderators, so any of them can be revoked.
    let listed = alice.ok(&["channel", "invite", "hideout", "--list"]);
    assert!(
        listed.starts_with(&format!("{token}  by alice")),
        "{listed}"
    );
    assert!(listed.contains("5 use(s) left"), "{listed}");
    // A revoked token admits nobody.
    let said = alice.ok(&["channel", "invite", "hideout", "--revoke", &token]);
    assert_eq!(said.trim(), "#hideout: revoked an invite");
    alice.ok(&["channel", "unban", "hideout", "carol"]);
    let e = carol.fails(&["join", "hideout", "--invite", &token]);
    assert!(e.contains("not valid"), "{e}");
    let listed = alice.ok(&["channel", "invite", "hideout", "--list"]);
    assert_eq!(listed.trim(), "#hideout has no open invites");

    let e = carol.fails(&["channel", "invite", "hideout", "--ttl", "soon"]);
    assert!(e.contains("`soon` is not a duration"), "{e}");
}

#[test]
fn server_admins_ban_users_and_list_them() {
    let server = Server::start_with(&["--admin", "root"]);
    let root = User::register("root", &server);
    let alice = User::register("alice", &server);
    let carol = User::register("carol", &server);
    alice.ok(&["channel", "create", "lobby"]);

    let (mut tail, err) = tailing(&carol, "lobby");
    let said = root.ok(&["admin", "ban", "carol", "--for", "2h", "--reason", "spam"]);
    assert_eq!(said.trim(), "banned carol from the server for 2h");
    let status = ends_saying(&mut tail, &err, "you are banned from this server");
    assert!(!status.success());
    let e = carol.fails(&["send", "lobby", "hi"]);
    assert!(e.contains("carol is banned from this server for"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    let users = root.ok(&["admin", "users"]);
    let rows: Vec<&str> = users.lines().collect();
    assert!(rows[0].starts_with("name"), "{users}");
    assert_eq!(rows.len(), 4, "{users}");
    let carol_row = rows.iter().find(|r| r.starts_with("carol")).unwrap();
    assert!(carol_row.contains(": spam"), "{users}");
    let root_row = rows.iter().find(|r| r.starts_with("root")).unwrap();
    assert!(root_row.contains("admin"), "{users}");

    let e = alice.fails(&["admin", "users"]);
    assert_eq!(e.trim(), "conclave: only a server admin may list users");
    let e = alice.fails(&["admin", "ban", "carol"]);
    assert!(e.contains("only a server admin may ban users"), "{e}");

    root.ok(&["admin", "unban", "carol"]);
    carol.ok(&["send", "lobby", "back"]);
    let log = root.ok(&["audit", "--last", "2", "--format", "json"]);
    let actions: Vec<_> = log.lines().map(|l| json(l)["action"].clone()).collect();
    assert_eq!(actions, ["unban-user", "ban-user"]);
}

#[test]
fn the_moderation_verbs_are_in_the_completions_and_the_manual() {
    let user = User::unregistered("anyone");
    let bash = user.ok(&["completions", "bash"]);
    for verb in ["kick", "unmute", "reply-mode", "audit", "--ban-for"] {
        assert!(bash.contains(verb), "{verb}");
    }
    let man = user.ok(&["man"]);
    assert!(man.contains("admin") && man.contains("audit"), "{man}");
    let e = user.fails(&["channel", "mute", "ops", "bob", "--for", "10x"]);
    assert!(e.contains("`10x` is not a duration"), "{e}");
}
