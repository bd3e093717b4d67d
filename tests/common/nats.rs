//! A NATS server for the tests of several instances: `CONCLAVE_TEST_NATS` names one
//! (`scripts/test-services.sh start` starts it). Without it those tests skip, unless
//! `CONCLAVE_REQUIRE_NATS=1` (as in CI), which makes them fail instead. A test that stops and
//! starts NATS runs a private `nats-server` of its own (`Private`).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ChildGuard;

/// The shared test NATS server's URL, or `None` to skip.
pub fn test_url() -> Option<String> {
    match std::env::var("CONCLAVE_TEST_NATS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CONCLAVE_REQUIRE_NATS").is_ok_and(|v| v == "1") => panic!(
            "CONCLAVE_REQUIRE_NATS=1 but CONCLAVE_TEST_NATS is unset: start one with \
             `eval \"$(scripts/test-services.sh start)\"`"
        ),
        _ => None,
    }
}

/// A `nats-server` of this test's own, on a fixed loopback port so it can be restarted.
pub struct Private {
    pub port: u16,
    child: Option<ChildGuard>,
}

impl Private {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Self { port, child: None };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.child.take();
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: run scripts/test-services.sh start");
        self.child = Some(ChildGuard(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
