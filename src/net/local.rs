//! The server running on this machine, as its data directory tells: a running `conclave serve`
//! holds an exclusive lock on `serve.pid` there (the lock dies with the process, even on
//! SIGKILL, so a stale file never misleads) and writes its pid and address into it. The server
//! takes the lock; `conclave status` and `conclave serve --stop` read it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

/// The file a running server locks in its data directory.
pub const PID_FILE: &str = "serve.pid";

/// The log a server started by zero set-up writes, in the config directory.
pub const LOCAL_LOG: &str = "serve.log";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "another server (pid {pid}, {addr}) already uses {dir}: stop it first with `conclave serve --stop`"
    )]
    Running { pid: u32, addr: String, dir: String },
    #[error("cannot use {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the server (pid {0}) did not stop within {1} s")]
    StillRunning(u32, u64),
}

/// A server found running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub addr: String,
}

/// Held by a running server for as long as it runs.
#[derive(Debug)]
pub struct PidLock {
    _file: File,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn open(path: &Path) -> Result<File, LocalError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error(path))
}

/// Takes the file's lock without waiting: `Ok(false)` when another process holds it.
fn try_lock(file: &File, how: FlockOperation) -> std::io::Result<bool> {
    match rustix::fs::flock(file, how) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_running(file: &mut File) -> Option<Running> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let addr = lines.next().unwrap_or_default().trim().to_owned();
    Some(Running { pid, addr })
}

impl PidLock {
    /// Claims `dir` for this process, listening on `addr`; refuses when another server holds it.
    pub fn acquire(dir: &Path, addr: &str) -> Result<Self, LocalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(PID_FILE);
        let mut file = open(&path)?;
        match try_lock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(true) => {}
            Ok(false) => {
                let running = read_running(&mut file).unwrap_or(Running {
                    pid: 0,
                    addr: "starting".into(),
                });
                return Err(LocalError::Running {
                    pid: running.pid,
                    addr: running.addr,
                    dir: dir.display().to_string(),
                });
            }
            Err(e) => return Err(io_error(&path)(e)),
        }
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}\n{addr}", std::process::id())?;
            file.sync_all()
        };
        write(&mut file).map_err(io_error(&path))?;
        Ok(Self { _file: file })
    }
}

/// The server running on `dir`, if any.
pub fn running(dir: &Path) -> Result<Option<Running>, LocalError> {
    let path = dir.join(PID_FILE);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    };
    match try_lock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(true) => Ok(None),
        Ok(false) => Ok(read_running(&mut file)),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Asks the server running on `dir` to stop (SIGTERM: it flushes and closes cleanly) and waits
/// until it has. `None` when none was running.
pub async fn stop(dir: &Path, wait: Duration) -> Result<Option<Running>, LocalError> {
    let Some(server) = running(dir)? else {
        return Ok(None);
    };
    let pid = i32::try_from(server.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| LocalError::Io {
            path: dir.join(PID_FILE).display().to_string(),
            source: std::io::Error::other(format!("no such pid {}", server.pid)),
        })?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .map_err(|e| io_error(&dir.join(PID_FILE))(e.into()))?;
    let deadline = Instant::now() + wait;
    while running(dir)?.is_some() {
        if Instant::now() >= deadline {
            return Err(LocalError::StillRunning(server.pid, wait.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Some(server))
}

/// Where zero set-up's server writes its log.
pub fn local_log(config_dir: &Path) -> PathBuf {
    config_dir.join(LOCAL_LOG)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_lock_names_its_holder_and_dies_with_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running(dir.path()).unwrap(), None);
        let held = PidLock::acquire(dir.path(), "127.0.0.1:7420").unwrap();
        let found = running(dir.path()).unwrap().unwrap();
        assert_eq!(found.pid, std::process::id());
        assert_eq!(found.addr, "127.0.0.1:7420");
        let refused = PidLock::acquire(dir.path(), "127.0.0.1:7421").unwrap_err();
        assert!(refused.to_string().contains("already uses"), "{refused}");
        drop(held);
        // The file stays behind, but without its lock it names nobody.
        assert!(dir.path().join(PID_FILE).exists());
        assert_eq!(running(dir.path()).unwrap(), None);
    }
}
