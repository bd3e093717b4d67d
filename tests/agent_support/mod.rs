//! The harness for `conclave agent` tests: an MCP client on the real binary's stdio, the
//! usual two users in #general, and in-process sessions that play a person at a TUI.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::process::{ChildStdin, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ChildGuard, Lines, Server, User, json as parse};
use conclave::net::identity::Identity;
use conclave::net::link::{LinkConfig, LinkEvent, LinkHandle, Login};
use conclave::net::names::Name;
use conclave::net::protocol::{ChannelAct, ClientFrame, SessionKind};
use conclave::net::ws::spawn_link;

pub const WAIT: Duration = Duration::from_secs(20);

/// An MCP client on the agent's stdio.
pub struct Mcp {
    pub _child: ChildGuard,
    pub stdin: Option<ChildStdin>,
    pub out: Lines,
    pub err: Lines,
    next_id: u64,
    /// Notifications read while waiting for a response.
    stash: Vec<Value>,
}

impl Mcp {
    pub fn spawn(user: &User, dir: &std::path::Path, args: &[&str]) -> Self {
        Self::spawn_with_env(user, dir, args, &[])
    }

    /// The same with extra environment variables (`RUST_LOG` to read an info line).
    pub fn spawn_with_env(
        user: &User,
        dir: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = user.command(&[&["agent"], args].concat());
        command.envs(env.iter().copied());
        command
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take();
        let out = Lines::new(child.stdout.take().unwrap());
        let err = Lines::new(child.stderr.take().unwrap());
        Self {
            _child: ChildGuard(child),
            stdin,
            out,
            err,
            next_id: 1,
            stash: Vec::new(),
        }
    }

    pub fn write(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn next_line(&mut self) -> Value {
        let line = self.out.next(WAIT).expect("a line from the agent");
        parse(&line)
    }

    /// The next line `wanted` picks, passing over the others.
    pub fn next_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next_line();
            if wanted(&v) {
                return v;
            }
        }
    }

    /// Sends a request and returns its response, stashing notifications that come first.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.write(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        loop {
            let value = self.next_line();
            if value["id"] == json!(id) {
                return value;
            }
            self.stash.push(value);
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string());
    }

    pub fn initialize(&mut self, version: &str) -> Value {
        let response = self.request(
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
        );
        self.notify("notifications/initialized", json!({}));
        response
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))["result"].clone()
    }

    /// The next notification with `method`, skipping others.
    pub fn notification(&mut self, method: &str) -> Value {
        if let Some(i) = self.stash.iter().position(|v| v["method"] == method) {
            return self.stash.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no {method} notification");
            let value = self.next_line();
            if value["method"] == method {
                return value;
            }
        }
    }

    /// Polls the `status` tool until `channel` runs at `level` (the agent follows the config
    /// file within seconds).
    pub fn wait_for_level(&mut self, channel: &str, level: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let status: Value =
                serde_json::from_str(&text_of(&self.call("status", json!({})))).unwrap();
            let current = status["channels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["channel"] == channel)
                .map(|c| c["autonomy"].clone());
            if current == Some(json!(level)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "#{channel} never became {level}: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The notifications with `method` that arrive before the first one `sentinel` accepts
    /// (which must arrive). Send the sentinel after whatever must not be pushed: the agent
    /// handles both in order, so anything not among these was never pushed at all.
    pub fn notifications_before(
        &mut self,
        method: &str,
        sentinel: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let value = self.notification(method);
            if sentinel(&value) {
                before.push(value);
                return before;
            }
            before.push(value);
        }
    }

    /// Asserts no notification with `method` arrives within `wait`. Only for what has no
    /// sentinel to wait for; prefer `notifications_before`.
    pub fn no_notification(&mut self, method: &str, wait: Duration) {
        assert!(
            !self.stash.iter().any(|v| v["method"] == method),
            "{:?}",
            self.stash
        );
        let deadline = Instant::now() + wait;
        while let Some(line) = self
            .out
            .next(deadline.saturating_duration_since(Instant::now()))
        {
            let value = parse(&line);
            assert_ne!(value["method"], method, "unexpected {value}");
        }
    }
}

pub fn content_of(push: &Value) -> String {
    push["params"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// alice (with an agent to come) and bob, both in #general.
pub fn setup(server: &Server) -> (User, User, tempfile::TempDir) {
    let alice = User::register("alice", server);
    let bob = User::register("bob", server);
    alice.ok(&["channel", "create", "general"]);
    alice.ok(&["join", "general"]);
    bob.ok(&["join", "general"]);
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("api")).unwrap();
    (alice, bob, project)
}

/// A live session of `user` in-process, for playing the person at a TUI (or an impostor).
pub async fn session(
    server: &Server,
    user: &User,
    kind: SessionKind,
    handle: &str,
) -> (LinkHandle, tokio::sync::mpsc::Receiver<LinkEvent>) {
    let (link, mut events) = spawn_link(LinkConfig {
        url: server.url(),
        identity: Arc::new(Identity::load(&user.config_path()).unwrap()),
        handle: Name::handle(handle).unwrap(),
        handle_defaulted: false,
        kind,
        login: Login::Key,
        persistent: true,
        ca_file: None,
        pin: Default::default(),
    });
    match tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LinkEvent::Connected { .. } => (link, events),
        other => panic!("{other:?}"),
    }
}

/// Has a person's session do a moderation act (it must be allowed to).
pub async fn moderate(person: &LinkHandle, channel: &str, act: ChannelAct, reason: Option<&str>) {
    person
        .request(ClientFrame::Moderate {
            id: 0,
            channel: Name::channel(channel).unwrap(),
            act,
            reason: reason.map(Into::into),
        })
        .await
        .unwrap();
}
