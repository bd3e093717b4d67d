//! `conclave tui` used the way a person uses it: in a real terminal (tmux), against a real
//! server, next to people using `send` and `tail`. Skips (with a note) where tmux is missing,
//! except under `CONCLAVE_REQUIRE_TMUX` (set by `.ci/run`, which installs it): then it fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Server, User, json};

const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn start(user: &User, width: u16, height: u16) -> Self {
        Self::start_with(user, width, height, "")
    }

    /// The same, with `env` (`NAME=value ...`) before the command.
    fn start_with(user: &User, width: u16, height: u16, env: &str) -> Self {
        Self::run(user, width, height, env, "tui")
    }

    /// Any `conclave` command line (`args`) in the terminal, as `user`.
    fn run(user: &User, width: u16, height: u16, env: &str, args: &str) -> Self {
        // One tmux server per TUI, even for tests running at once as the same user.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("conclave-test-{}-{}-{n}", std::process::id(), user.name);
        let command = format!(
            "{env} CONCLAVE_CONFIG_DIR={} {BIN} {args}",
            user.config_path().display()
        );
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "tui",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                &command,
            ])
            .env_remove("TMUX")
            .status()
            .unwrap();
        assert!(status.success());
        Self { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "tui"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        self.wait_until(&format!("`{what}` showing"), |screen| screen.contains(what))
    }

    /// Waits until `done` holds for the screen; `what` says what was awaited.
    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the TUI has quit (its tmux session ended).
    fn wait_gone(&self) {
        let deadline = Instant::now() + WAIT;
        while Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", "tui"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "the TUI did not quit");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "tui"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn type_line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// False (with a note) when tmux is missing and CI does not require it.
fn tmux_or_skip() -> bool {
    if Tmux::available() {
        return true;
    }
    // CI sets this: there a missing tmux is a failure, never a silent pass.
    assert!(
        std::env::var_os("CONCLAVE_REQUIRE_TMUX").is_none(),
        "tmux is required (CONCLAVE_REQUIRE_TMUX is set); scripts/install-test-deps.sh installs it"
    );
    eprintln!("skipped: tmux is not installed (scripts/install-test-deps.sh installs it)");
    false
}

#[test]
fn a_person_whose_name_is_taken_picks_another_inside_the_tui() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let _alice = User::register("alice", &server);
    // Another alice on another machine, with only the server configured: zero set-up.
    let newcomer = User::unregistered("newcomer");
    std::fs::write(
        newcomer.config_path().join("config.toml"),
        format!("server = \"{}\"\n", server.url()),
    )
    .unwrap();
    let tui = Tmux::start_with(&newcomer, 120, 30, "USER=alice");
    tui.wait_for("`alice` is taken");
    tui.type_line("alice2");
    tui.wait_for("registered as `alice2`");
    tui.wait_for("connected │ alice2/");
}

#[test]
fn a_person_chats_in_the_tui_and_it_recovers_from_a_server_restart() {
    if !tmux_or_skip() {
        return;
    }
    let mut server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    bob.ok(&["send", "general", "before you came"]);

    let tui = Tmux::start(&alice, 120, 30);
    tui.wait_for("connected │ alice/box/tui");
    tui.wait_for("before you came");

    // Both ways: a `send` shows up in the TUI, what the person types reaches a `tail`.
    let (_tail, lines, err) = bob.spawn(&["tail", "general", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing"));
    bob.ok(&["send", "general", "hello @alice"]);
    tui.wait_for("bob/box/cli: hello @alice");
    tui.type_line("hi bob, from the terminal");
    let line = json(&lines.wait_for(WAIT, |l| l.contains("from the terminal")));
    assert_eq!(line["from"], "alice/box/tui");

    // The member list shows who is here.
    tui.wait_for("● bob/box/tail");

    // The server restarts; the TUI says so, comes back and shows what it missed, once.
    server.stop("TERM");
    tui.wait_for("reconnecting in");
    server.restart();
    bob.ok(&["send", "general", "sent while you reconnected"]);
    let screen = tui.wait_for("sent while you reconnected");
    tui.wait_for("connected │ alice/box/tui");
    assert_eq!(
        screen.matches("sent while you reconnected").count(),
        1,
        "{screen}"
    );
    assert_eq!(screen.matches("hello @alice").count(), 1, "{screen}");

    // Keys: the help overlay opens and closes; Ctrl-C drops a draft first, then quits and
    // gives the terminal back.
    tui.keys(&["F1"]);
    tui.wait_for("Keys");
    tui.keys(&["Escape"]);
    // Typed at once, Escape and `a` would read as Alt-A: wait for the overlay to close.
    tui.wait_until("the help closed", |s| !s.contains("Keys"));
    tui.keys(&["-l", "a draft to drop"]);
    tui.wait_for("a draft to drop");
    tui.keys(&["C-c"]);
    tui.wait_for("Type a message, or /help");
    assert!(!tui.screen().contains("a draft to drop"));
    tui.keys(&["C-c"]);
    let deadline = Instant::now() + WAIT;
    while Command::new("tmux")
        .args(["-L", &tui.socket, "has-session", "-t", "tui"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "the TUI did not quit on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_tui_lists_channels_and_reopens_the_one_last_in_view() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let alice = User::register("alice", &server);
    for channel in ["general", "ops"] {
        alice.ok(&["channel", "create", channel]);
        alice.ok(&["join", channel]);
    }
    {
        let tui = Tmux::start(&alice, 120, 30);
        tui.wait_for("connected │ alice/box/tui");
        tui.type_line("/list");
        tui.wait_for("2 channels:");
        tui.wait_for("#ops     public   joined");
        tui.type_line("/join ops");
        tui.wait_for(" to #ops ");
        tui.keys(&["C-c"]);
        tui.wait_gone();
    }
    let tui = Tmux::start(&alice, 120, 30);
    tui.wait_for("connected │ alice/box/tui");
    tui.wait_for(" to #ops ");
}

#[test]
fn a_machine_with_a_human_key_asks_its_person_for_the_passphrase() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let alice = User::register("alice", &server);
    let made = alice.make_human_key("correct horse battery");
    assert!(made.status.success(), "{}", common::stderr(&made));
    let tui = Tmux::start(&alice, 100, 30);
    tui.wait_for("passphrase of this machine's human key");
    tui.type_line("not the passphrase");
    tui.wait_for("does not open it");
    let screen = tui.screen();
    assert!(!screen.contains("not the passphrase"), "echoed:\n{screen}");
    tui.type_line("correct horse battery");
    tui.wait_for("connected │ alice/box/tui");
}

#[test]
fn with_a_human_key_a_person_invites_a_machine_after_typing_the_passphrase() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let alice = User::register("alice", &server);
    let made = alice.make_human_key("correct horse battery");
    assert!(made.status.success(), "{}", common::stderr(&made));
    // The output stays on screen a while after the command ends.
    let term = Tmux::run(&alice, 120, 30, "", "machine invite desk; sleep 30");
    term.wait_for("passphrase of this machine's human key");
    term.type_line("correct horse battery");
    term.wait_for("conclave machine enroll");
}

#[test]
fn a_person_sets_the_topic_and_mutes_someone_from_the_tui() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);

    let tui = Tmux::start(&alice, 120, 30);
    tui.wait_for("connected │ alice/box/tui");
    tui.wait_for(" to #general ");
    tui.type_line("/topic deploys go through review");
    tui.wait_for("alice/box/tui set the topic: deploys go through review");
    tui.wait_for("#general · deploys go through review");
    tui.type_line("/mute bob 10m spamming");
    tui.wait_for("alice/box/tui muted bob for 10m (spamming)");
    // The server holds to it: bob's messages are refused for now.
    let refused = bob.fails(&["send", "general", "let me talk"]);
    assert!(refused.contains("muted"), "{refused}");

    // The audit view lists both acts; Esc goes back to the channel.
    tui.type_line("/audit");
    tui.wait_for(" audit #general ");
    tui.wait_for("alice/box/tui muted bob for 10m (spamming)");
    tui.keys(&["Escape"]);
    tui.wait_for(" to #general ");
}

#[test]
fn one_tui_shows_two_servers_and_keeps_working_on_one_while_the_other_restarts() {
    if !tmux_or_skip() {
        return;
    }
    let mut work = Server::start();
    let home = Server::start();
    let alice = User::register_with_aliases("alice", &[(&work, "work"), (&home, "home")]);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    alice.ok(&["channel", "create", "ops", "--server", "home"]);
    alice.ok(&["join", "ops@home"]);
    let bob = User::register("bob", &home);
    bob.ok(&["join", "ops"]);

    let tui = Tmux::start(&alice, 100, 24);
    tui.wait_for("#general");
    let screen = tui.wait_for("#ops");
    assert!(
        screen.contains("work") && screen.contains("home"),
        "{screen}"
    );
    // Whichever server answered first has its room in view: look at work's #general.
    tui.type_line("/join general@work");
    tui.wait_for("connected │ alice/box/tui │ work");
    bob.ok(&["send", "ops", "from home"]);
    tui.wait_until("#ops shows 1 unread", |s| {
        sidebar(s, "#ops").ends_with(" 1")
    });

    // The default server goes away: its rooms wait, the other server's keep coming.
    work.stop("TERM");
    tui.wait_until("work reconnecting", |s| sidebar(s, "work").ends_with('⟳'));
    bob.ok(&["send", "ops", "still here"]);
    tui.wait_until("#ops shows 2 unread", |s| {
        sidebar(s, "#ops").ends_with(" 2")
    });
    tui.type_line("/join ops@home");
    tui.wait_for("still here");
    let (_tail, lines, err) = bob.spawn(&["tail", "ops", "--format", "json"]);
    err.wait_for(WAIT, |l| l.contains("tailing #ops"));
    tui.type_line("hello bob");
    let said = json(&lines.wait_for(WAIT, |l| l.contains("hello bob")));
    assert_eq!(said["from"], "alice/box/tui");
    work.restart();
    tui.wait_for("connected │ alice/box/tui │ home");
    tui.wait_until("work reconnected", |s| sidebar(s, "work") == "work");
}

/// The sidebar row that starts with `start`, trimmed ("" when there is none).
fn sidebar(screen: &str, start: &str) -> String {
    screen
        .lines()
        .filter_map(|line| line.split('│').next())
        .map(str::trim_end)
        .find(|row| row.starts_with(start))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_person_edits_reacts_pins_and_answers_a_direct_message_in_the_tui() {
    if !tmux_or_skip() {
        return;
    }
    let server = Server::start();
    let alice = User::register("alice", &server);
    let bob = User::register("bob", &server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);

    let tui = Tmux::start(&alice, 120, 30);
    tui.wait_for("connected │ alice/box/tui");
    tui.wait_for(" to #general ");
    bob.ok(&["send", "general", "freeze until Friday"]);
    tui.wait_for("bob/box/cli: freeze until Friday");
    tui.type_line("/react 1 👍");
    tui.wait_for("👍 1");
    tui.type_line("/pin 1");
    tui.wait_for("📌 bob/box/cli: freeze until Friday (#1)");
    tui.type_line("typo hree");
    tui.wait_for("alice/box/tui: typo hree");
    // Seq 2 is the reaction: her message is 3.
    tui.type_line("/edit 3 typo here");
    tui.wait_for("alice/box/tui: typo here (edited)");
    // Someone opens a direct conversation: it appears in the sidebar, named for them.
    bob.ok(&["dm", "alice", "a word in private?"]);
    tui.wait_for("@bob");
    tui.type_line("/dm bob sure");
    tui.wait_for(" to @bob ");
    tui.wait_for("alice/box/tui: sure");
    let (_tail, lines, err) = bob.spawn(&["tail", "@alice", "--since", "0"]);
    err.wait_for(WAIT, |l| l.contains("tailing #alice+bob"));
    lines.wait_for(WAIT, |l| l.contains("alice/box/tui: sure"));
}
