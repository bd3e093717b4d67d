//! Opening a session the way every front end does: read the config dir, pick the server, load
//! (or make) the key, start the link and wait for the welcome. Also the zero set-up path of
//! `tui` and `agent`: with nothing configured they use the local default server, start
//! `conclave serve` in the background when nothing listens there, and register the local user
//! name on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::config::{ClientConfig, ConfigError, DEFAULT_BIND, DEFAULT_SERVER};
use super::identity::{Identity, IdentityError};
use super::link::{LinkConfig, LinkEvent, LinkHandle, LinkRegistry, Login};
use super::names::{Name, NameError, SessionPath};
use super::protocol::SessionKind;
use super::servers::{ServerEntry, default_alias, server_urls};
use super::ws::{check_address, spawn_link};

/// Names a PEM file of CA certificates to trust for `wss://` instead of the public roots.
pub const CA_FILE_ENV: &str = "CONCLAVE_CA_FILE";

/// How long zero set-up waits for the server it started to listen.
const LOCAL_START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Servers(#[from] super::servers::ServersError),
    #[error("cannot start a local server: {0}")]
    LocalServer(String),
    /// The link gave up: the server refused us or could not be reached.
    #[error("{0}")]
    Link(String),
}

/// How the session logs in.
#[derive(Debug, Clone)]
pub enum Setup {
    /// The key must be enrolled already (one-shot verbs).
    Key,
    /// Claim this user name with this machine name (`conclave register`).
    /// Claim a user name; the server is remembered under `alias` (else its host name).
    Register {
        username: Name,
        machine: Name,
        alias: Option<Name>,
    },
    /// Enroll this machine's key with a code from an enrolled machine (`conclave machine enroll`).
    Enroll { code: String },
    /// Zero set-up: register the local user name on first use, and start a local server when
    /// the default one is not running (`tui`, `agent`).
    Auto,
    /// Zero set-up registering this name instead of the local one (a person picked it after
    /// the local one was taken).
    AutoAs(Name),
}

/// Everything about the session to open.
#[derive(Debug, Clone)]
pub struct Opening {
    pub config_dir: PathBuf,
    /// `--server`; else the config file's; else the local default.
    pub server: Option<String>,
    /// A chosen handle (refused if taken); `None` uses `default_handle` (suffixed if taken).
    pub handle: Option<String>,
    pub default_handle: String,
    pub kind: SessionKind,
    pub persistent: bool,
    pub setup: Setup,
    /// A key to sign in with instead of the machine key: the unlocked human key.
    pub identity: Option<Arc<Identity>>,
    /// The client's other links, so this one never reaches a server one of them does.
    pub registry: Option<LinkRegistry>,
}

/// An open session.
pub struct Session {
    pub link: LinkHandle,
    pub events: mpsc::Receiver<LinkEvent>,
    pub path: SessionPath,
    pub server: String,
    /// The server's id, as signatures for it must name it.
    pub server_id: String,
    /// The server zero set-up started for this session, if it did.
    pub local_server: Option<LocalServer>,
}

/// The user name zero set-up registers: the login name, made valid.
pub fn local_user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .and_then(|u| Name::sanitize(&u))
        .map_or_else(|| "me".to_owned(), |n| n.to_string())
}

/// Whether `local_user_name` came from `$USER` (else it was guessed: worth saying which).
pub fn user_env_set() -> bool {
    std::env::var("USER").is_ok_and(|u| Name::sanitize(&u).is_some())
}

/// The machine name used when none is given: the host name, made valid.
pub fn default_machine_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    Name::sanitize(host.split('.').next().unwrap_or_default())
        .map_or_else(|| "machine".to_owned(), |n| n.to_string())
}

/// A server that zero set-up started in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServer {
    pub pid: u32,
    pub log: PathBuf,
}

/// A session whose link is started but not yet welcomed.
pub struct Started {
    pub link: LinkHandle,
    pub events: mpsc::Receiver<LinkEvent>,
    pub server: String,
    /// The server this start launched, if it did (the person should hear about it).
    pub local_server: Option<LocalServer>,
    /// This session claims a user name or enrolls a key: remember the server and user once
    /// welcomed (see `remember`).
    pub registering: bool,
    /// The name zero set-up claims, and whether it came from `$USER` (if not, the person
    /// should hear which name was picked).
    pub claiming: Option<(Name, bool)>,
    /// What `register --alias` named the server.
    alias: Option<Name>,
    config_dir: PathBuf,
}

impl Started {
    /// After the first welcome of a registering session, records the server among the
    /// person's servers, the default if it is the first (once: later welcomes are
    /// reconnects). Refused when another alias already reaches the same server.
    pub fn remember(&mut self, path: &SessionPath, server_id: &str) -> Result<(), ClientError> {
        if !self.registering {
            return Ok(());
        }
        self.registering = false;
        let mut config = ClientConfig::load(&self.config_dir)?;
        let alias = self
            .alias
            .clone()
            .or_else(|| config.alias_of(&self.server))
            .unwrap_or_else(|| default_alias(&self.server));
        let entry = ServerEntry {
            url: self.server.clone(),
            user: Some(path.user.to_string()),
            server_id: Some(server_id.to_owned()),
            ..ServerEntry::default()
        };
        config.add_server(alias, entry)?;
        config.save(&self.config_dir)?;
        Ok(())
    }
}

/// Prepares the key and config (and, for zero set-up, the local server), then starts the link
/// without waiting for it to connect.
pub async fn start(opening: Opening) -> Result<Started, ClientError> {
    let config = ClientConfig::load(&opening.config_dir)?;
    let server = config.resolve_server(opening.server.as_deref())?;
    // Every address of a list, not only the first that answers: a typo shows at once.
    for url in server_urls(&server) {
        check_address(&url).map_err(|e| ClientError::Link(e.message))?;
    }
    let mut pin = config.pin_for(&server);
    if let Some(registry) = &opening.registry {
        let alias = config
            .alias_of(&server)
            .map_or_else(|| server.clone(), String::from);
        pin.registry = Some((registry.clone(), alias));
    }
    let mut local_server = None;
    let (identity, login) = match &opening.setup {
        Setup::Key => (Identity::load(&opening.config_dir)?, Login::Key),
        Setup::Register {
            username, machine, ..
        } => (
            Identity::load_or_create(&opening.config_dir)?.0,
            Login::Register {
                username: username.clone(),
                machine: machine.clone(),
            },
        ),
        Setup::Enroll { code } => (
            Identity::load_or_create(&opening.config_dir)?.0,
            Login::Enroll { code: code.clone() },
        ),
        Setup::Auto | Setup::AutoAs(_) => {
            if server == DEFAULT_SERVER {
                local_server = ensure_local_server(&opening.config_dir).await?;
            }
            let identity = Identity::load_or_create(&opening.config_dir)?.0;
            let login = match (&config.user_at(&server), &opening.setup) {
                (_, Setup::AutoAs(name)) => Login::Register {
                    username: name.clone(),
                    machine: Name::machine(&default_machine_name())?,
                },
                (Some(_), _) => Login::Key,
                (None, _) => Login::Register {
                    username: Name::user(&local_user_name())?,
                    machine: Name::machine(&default_machine_name())?,
                },
            };
            (identity, login)
        }
    };
    let claiming = match (&login, &opening.setup) {
        (Login::Register { username, .. }, Setup::Auto) => Some((username.clone(), user_env_set())),
        (Login::Register { username, .. }, Setup::AutoAs(_)) => Some((username.clone(), true)),
        _ => None,
    };
    let registering = !matches!(login, Login::Key);
    let (handle, handle_defaulted) = match &opening.handle {
        Some(h) => (Name::handle(h)?, false),
        None => (Name::handle(&opening.default_handle)?, true),
    };
    let identity = opening
        .identity
        .clone()
        .unwrap_or_else(|| Arc::new(identity));
    let (link, events) = spawn_link(LinkConfig {
        url: server.clone(),
        identity,
        handle,
        handle_defaulted,
        kind: opening.kind,
        login,
        persistent: opening.persistent,
        ca_file: std::env::var_os(CA_FILE_ENV).map(PathBuf::from),
        pin,
    });
    Ok(Started {
        link,
        events,
        server,
        local_server,
        registering,
        claiming,
        alias: match &opening.setup {
            Setup::Register { alias, .. } => alias.clone(),
            _ => None,
        },
        config_dir: opening.config_dir,
    })
}

/// Opens a session and waits until it is welcomed. `on_retry` hears about failed attempts of
/// a persistent link before the first success.
pub async fn open(
    opening: Opening,
    on_retry: impl Fn(&str, Duration),
) -> Result<Session, ClientError> {
    let mut started = start(opening).await?;
    loop {
        match started.events.recv().await {
            Some(LinkEvent::Connected {
                path, server_id, ..
            }) => {
                started.remember(&path, &server_id)?;
                return Ok(Session {
                    link: started.link,
                    events: started.events,
                    path,
                    server: started.server,
                    server_id,
                    local_server: started.local_server,
                });
            }
            Some(LinkEvent::Closed { reason }) => return Err(ClientError::Link(reason)),
            Some(LinkEvent::Disconnected { reason, retry_in }) => on_retry(&reason, retry_in),
            Some(_) => {}
            None => return Err(ClientError::Link("the link stopped".into())),
        }
    }
}

/// Starts `conclave serve` on the default address in the background unless something already
/// listens there, and waits until it does. Returns the server it started, if it did.
async fn ensure_local_server(config_dir: &Path) -> Result<Option<LocalServer>, ClientError> {
    let listening = || async {
        tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(DEFAULT_BIND),
        )
        .await
        .is_ok_and(|connected| connected.is_ok())
    };
    if listening().await {
        return Ok(None);
    }
    let exe = std::env::current_exe().map_err(|e| ClientError::LocalServer(e.to_string()))?;
    let log_path = super::local::local_log(config_dir);
    std::fs::create_dir_all(config_dir).map_err(|e| ClientError::LocalServer(e.to_string()))?;
    let log = std::fs::File::create(&log_path)
        .map_err(|e| ClientError::LocalServer(format!("{}: {e}", log_path.display())))?;
    let mut command = Command::new(exe);
    command
        .args(["serve", "--bind", DEFAULT_BIND])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // Its own process group: Ctrl-C in the terminal that started it must not stop it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| ClientError::LocalServer(e.to_string()))?;
    let started = LocalServer {
        pid: child.id(),
        log: log_path.clone(),
    };
    // Reaped when it exits while we run, so it never lingers as a zombie; when we exit first
    // it simply carries on.
    std::thread::spawn(move || child.wait());
    let deadline = Instant::now() + LOCAL_START_TIMEOUT;
    while Instant::now() < deadline {
        if listening().await {
            return Ok(Some(started));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(ClientError::LocalServer(format!(
        "it did not start listening on {DEFAULT_BIND}; see {}",
        log_path.display()
    )))
}
