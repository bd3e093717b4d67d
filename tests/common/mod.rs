//! Helpers for tests that run the real `conclave` binary: a server on a free loopback port in
//! a temp dir, users with their own config dirs, and long-running clients whose output lines
//! are collected by a thread. Every child is killed when its guard drops; every wait times out.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod nats;
pub mod postgres;

pub const BIN: &str = env!("CARGO_BIN_EXE_conclave");

/// Kills the child when dropped, so a failing test leaves nothing running.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Collects a child's stdout lines on a thread.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    pub fn new(stream: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx }
    }

    /// The next line, or `None` after `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Reads lines until `pred` holds for one, failing the test after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!("no matching line within {timeout:?}"),
            }
        }
    }
}

/// A `conclave serve` child on a loopback port with its own data dir (or a PostgreSQL store).
pub struct Server {
    pub data: TempDir,
    pub addr: String,
    /// `serve` flags beyond the address (the data dir or store, and e.g. `--admin root`),
    /// kept for restarts.
    flags: Vec<String>,
    child: Option<ChildGuard>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server started with extra `serve` flags, e.g. `&["--admin", "root"]`.
    pub fn start_with(flags: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap().to_owned();
        Self::spawn(data, ["--data-dir", &dir].iter().chain(flags))
    }

    /// A server on the PostgreSQL database at `url` (see `postgres::fresh_schema`).
    pub fn start_on_store(url: &str) -> Self {
        Self::spawn(tempfile::tempdir().unwrap(), &["--store", url])
    }

    /// One instance of a cluster: the PostgreSQL store at `store`, the NATS bus at `bus`.
    pub fn start_in_cluster(store: &str, bus: &str, flags: &[&str]) -> Self {
        let base = ["--store", store, "--bus", bus];
        Self::spawn(tempfile::tempdir().unwrap(), base.iter().chain(flags))
    }

    fn spawn<'a>(data: TempDir, flags: impl IntoIterator<Item = &'a &'a str>) -> Self {
        let flags: Vec<String> = flags.into_iter().map(|f| (*f).to_owned()).collect();
        let (child, addr) = try_spawn_server("127.0.0.1:0", &flags).unwrap();
        Self {
            data,
            addr,
            flags,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().0.id()
    }

    /// Stops the server with `signal` (e.g. "TERM", "KILL") and returns its exit status.
    pub fn stop(&mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.exited()
    }

    /// Waits for the server to exit (something else stopped it) and returns its exit status.
    pub fn exited(&mut self) -> std::process::ExitStatus {
        let mut guard = self.child.take().expect("server running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = guard.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same address and data dir (or store).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match try_spawn_server(&self.addr, &self.flags) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart retry: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("server did not restart: {e}"),
            }
        }
    }
}

fn try_spawn_server(bind: &str, flags: &[String]) -> Result<(ChildGuard, String), String> {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", bind])
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let lines = Lines::new(stdout);
    let first = lines
        .next(Duration::from_secs(20))
        .ok_or_else(|| "server printed nothing".to_owned())?;
    let addr = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line: {first}"))?
        .to_owned();
    Ok((guard, addr))
}

/// A person or script with their own config dir (key + config.toml).
pub struct User {
    pub name: String,
    pub config: TempDir,
}

impl User {
    /// Creates a key and registers `name` on `server`.
    pub fn register(name: &str, server: &Server) -> Self {
        let user = Self::unregistered(name);
        let out = user.run(&[
            "register",
            name,
            "--server",
            &server.url(),
            "--machine",
            "box",
        ]);
        assert!(out.status.success(), "register failed: {}", stderr(&out));
        user
    }

    /// Registers `name` on each server under its alias, machine `box`; the first is the
    /// default.
    pub fn register_with_aliases(name: &str, servers: &[(&Server, &str)]) -> Self {
        let user = Self::unregistered(name);
        for (server, alias) in servers {
            let url = server.url();
            user.ok(&[
                "register",
                name,
                "--server",
                &url,
                "--alias",
                alias,
                "--machine",
                "box",
            ]);
        }
        user
    }

    pub fn unregistered(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("CONCLAVE_CONFIG_DIR", self.config.path())
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE");
        cmd
    }

    /// Runs a one-shot verb to completion (killed after 30 s).
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(30))
    }

    /// Runs a verb that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`conclave {}` failed: {}",
            args.join(" "),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a verb that must fail and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "`conclave {}` should have failed",
            args.join(" ")
        );
        stderr(&out)
    }

    /// Starts a long-running verb (e.g. `tail`); its stdout lines arrive on `Lines`.
    pub fn spawn(&self, args: &[&str]) -> (ChildGuard, Lines, Lines) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Lines::new(child.stdout.take().unwrap());
        let err = Lines::new(child.stderr.take().unwrap());
        (ChildGuard(child), out, err)
    }

    /// Runs `conclave key --human` with `passphrase` on stdin and returns its output.
    pub fn make_human_key(&self, passphrase: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(&["key", "--human", "--passphrase-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{passphrase}\n").as_bytes())
            .unwrap();
        drop(stdin);
        wait_output(child, Duration::from_secs(30))
    }

    pub fn config_path(&self) -> PathBuf {
        self.config.path().to_path_buf()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for a child while a thread drains its pipes (so a chatty child cannot fill a pipe
/// and hang), killing it after `timeout`.
fn wait_output(child: Child, timeout: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let output = rx.recv().unwrap().unwrap();
            panic!("command timed out; stderr: {}", stderr(&output));
        }
    }
}

/// Parses a `tail --format json` line.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A TCP proxy in front of `target` that cuts its first connection as soon as the client has
/// sent more than `cut_after` bytes: those bytes reach the server, but nothing the server says
/// after them reaches the client. Later connections pass through untouched. For testing what a
/// client does when its connection dies with a request in flight.
pub struct CuttingProxy {
    pub addr: String,
}

impl CuttingProxy {
    pub fn start(target: &str, cut_after: usize) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = target.to_owned();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&target) else {
                    return;
                };
                let cutting = n == 0;
                let cut = Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up_cut = cut.clone();
                std::thread::spawn(move || {
                    let mut sent = 0;
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(read) = c_in.read(&mut buf) {
                        if read == 0 {
                            break;
                        }
                        sent += read;
                        if cutting && sent > cut_after {
                            up_cut.store(true, Ordering::SeqCst);
                        }
                        if s_out.write_all(&buf[..read]).is_err() {
                            break;
                        }
                        if up_cut.load(Ordering::SeqCst) {
                            // Give the server a moment to store it, then cut both ways.
                            std::thread::sleep(Duration::from_millis(300));
                            let _ = c_in.shutdown(Shutdown::Both);
                            let _ = s_out.shutdown(Shutdown::Both);
                            break;
                        }
                    }
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(read) = s_in.read(&mut buf) {
                        if read == 0 || cut.load(Ordering::SeqCst) {
                            break;
                        }
                        if c_out.write_all(&buf[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

/// A TCP proxy in front of `target` that can lose it, as if it went down: `cut` drops every
/// connection and refuses new ones until `restore`.
pub struct LosableProxy {
    pub addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    live: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl LosableProxy {
    pub fn start(target: &str) -> Self {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (target, accepting, sockets) = (target.to_owned(), up.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut held = sockets.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { addr, up, live }
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for socket in self.live.lock().unwrap().drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
