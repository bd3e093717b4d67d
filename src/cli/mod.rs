//! The one-shot verbs (`key`, `register`, `channel`, `join`, `leave`, `send`, `whisper`, `tail`,
//! `who`, `machine`), each a short function over `net::link`; governing a channel is in
//! `moderation.rs`, the server-wide `admin` and `audit` in `admin.rs`. Output for people goes to stdout,
//! diagnostics to stderr; every failure is an error with words a person can act on, which
//! `main` turns into a non-zero exit.

pub mod admin;
pub mod bench;
pub mod changes;
pub mod moderation;
pub mod search;
pub mod send;
pub mod servers;
mod status;
mod tail;

pub use send::send;
pub use status::status;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use tail::{Format, message_json, message_line, resume_from, tail, whisper_json, whisper_line};
use tail::{local_time, printable, rfc3339};

use color_eyre::eyre::{Result, WrapErr, bail};

use crate::net::client::{self, Opening, Session, Setup};
use crate::net::config::{AutonomyKey, ClientConfig, autonomy_key, autonomy_place};
use crate::net::human_key;
use crate::net::identity::Identity;
use crate::net::link::Resume;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Autonomy, SessionKind, Visibility};

/// Where the verbs find the key and the config file.
#[derive(Debug, Clone)]
pub struct Env {
    pub config_dir: PathBuf,
}

/// How a verb wants to connect.
pub struct Connect<'a> {
    pub server: Option<&'a str>,
    /// An explicit handle; `None` uses `default_handle`, suffixed if taken.
    pub handle: Option<&'a str>,
    pub default_handle: &'a str,
    pub persistent: bool,
    pub setup: Setup,
}

impl Env {
    /// What the verbs' sessions count as: a person's, unless this machine has a human key;
    /// then that key (behind its passphrase, which a script has no way to type) is what makes
    /// a session a person's, and the verbs sign in as agents with the machine key.
    pub fn kind(&self) -> SessionKind {
        if human_key::exists(&self.config_dir) {
            SessionKind::Agent
        } else {
            SessionKind::Human
        }
    }

    /// Connects and waits for the handshake to finish (or fail).
    pub async fn connect(&self, how: Connect<'_>) -> Result<Session> {
        self.connect_as(how, self.kind(), None).await
    }

    /// A one-shot session as the person at the terminal: on a machine with a human key it
    /// asks for the passphrase and signs in with that key, since an account that uses human
    /// keys lets only them invite or remove machines.
    async fn as_person(&self, server: Option<&str>) -> Result<Session> {
        if !human_key::exists(&self.config_dir) {
            return self.one_shot(server).await;
        }
        let key = Arc::new(human_key::unlock_at_terminal(&self.config_dir).await?);
        let how = Connect {
            server,
            handle: None,
            default_handle: "cli",
            persistent: false,
            setup: Setup::Key,
        };
        self.connect_as(how, SessionKind::Human, Some(key)).await
    }

    async fn connect_as(
        &self,
        how: Connect<'_>,
        kind: SessionKind,
        identity: Option<Arc<Identity>>,
    ) -> Result<Session> {
        let opening = Opening {
            config_dir: self.config_dir.clone(),
            server: how.server.map(str::to_owned),
            handle: how.handle.map(str::to_owned),
            default_handle: how.default_handle.to_owned(),
            kind,
            persistent: how.persistent,
            setup: how.setup,
            identity,
            registry: None,
        };
        let session = client::open(opening, |reason, retry_in| {
            eprintln!(
                "conclave: {reason}; retrying in {}",
                human_duration(retry_in)
            );
        })
        .await?;
        Ok(session)
    }

    /// A one-shot connection with the default handle `cli`.
    async fn one_shot(&self, server: Option<&str>) -> Result<Session> {
        self.one_shot_as(server, Setup::Key).await
    }

    /// A one-shot connection that signs in the way `setup` says (first contact, enrolling).
    async fn one_shot_as(&self, server: Option<&str>, setup: Setup) -> Result<Session> {
        self.connect(Connect {
            server,
            handle: None,
            default_handle: "cli",
            persistent: false,
            setup,
        })
        .await
    }
}

pub fn human_duration(d: std::time::Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `conclave key`: creates the key if missing and prints the public half.
/// `conclave key --human`: makes this machine's human key, sealed under a passphrase, and
/// registers it; from then on the server takes `human` sessions of this machine only with it.
pub async fn human_key(env: &Env, server: Option<&str>, passphrase_stdin: bool) -> Result<()> {
    let dir = &env.config_dir;
    if human_key::exists(dir) {
        bail!(
            "this machine has a human key already ({}); to start over, remove the machine from another one and enroll it again",
            human_key::path(dir).display()
        );
    }
    let passphrase = if passphrase_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = human_key::prompt("passphrase for the human key: ")?;
        if human_key::prompt("again: ")? != first {
            bail!("the two passphrases differ; nothing was changed");
        }
        first
    };
    // Reachable first: nothing is written while the server cannot take the key.
    let client = env.one_shot(server).await?;
    let identity = {
        let dir = dir.clone();
        // Stretching the passphrase blocks for a moment: not on the async runtime.
        tokio::task::spawn_blocking(move || human_key::create(&dir, &passphrase)).await??
    };
    let path = &client.path;
    let signed = human_key::registration_message(
        &client.server_id,
        &path.user,
        &path.machine,
        &identity.public_key(),
    );
    if let Err(e) = client
        .link
        .set_human_key(identity.public_key(), identity.sign(&signed))
        .await
    {
        let _ = std::fs::remove_file(human_key::path(dir));
        return Err(e).wrap_err("the server did not take the human key; nothing was kept");
    }
    println!(
        "{}/{} has a human key: its human sessions (`conclave tui`) now need the passphrase; scripts and agents sign in as agents",
        path.user, path.machine
    );
    Ok(())
}

pub fn key(env: &Env) -> Result<()> {
    let (identity, created) = Identity::load_or_create(&env.config_dir)?;
    if created {
        eprintln!("created a new key in {}", env.config_dir.display());
    }
    println!("{}", identity.public_key_string());
    Ok(())
}

/// `conclave register NAME`: claims the name on the server and remembers the server.
pub async fn register(
    env: &Env,
    name: &str,
    server: Option<&str>,
    machine: Option<&str>,
    alias: Option<&str>,
) -> Result<()> {
    let username = Name::user(name)?;
    let machine = Name::machine(
        machine
            .map_or_else(client::default_machine_name, str::to_owned)
            .as_str(),
    )?;
    let alias = alias.map(|a| Name::parse("alias", a)).transpose()?;
    let setup = Setup::Register {
        username,
        machine,
        alias,
    };
    let client = env.one_shot_as(server, setup).await?;
    let config = ClientConfig::load(&env.config_dir)?;
    let alias = config
        .servers()
        .into_iter()
        .find(|(_, entry)| entry.url == client.server)
        .map(|(alias, _)| format!(" as `{alias}`"))
        .unwrap_or_default();
    println!(
        "registered {}/{} on {}{alias}",
        client.path.user, client.path.machine, client.server
    );
    Ok(())
}

pub async fn channel_create(
    env: &Env,
    name: &str,
    visibility: Visibility,
    server: Option<&str>,
) -> Result<()> {
    let channel = Name::channel(name)?;
    let client = env.one_shot(server).await?;
    let info = client.link.create_channel(&channel, visibility).await?;
    println!("created #{} ({})", info.name, info.visibility);
    Ok(())
}

/// `conclave channel add CHANNEL USER`: lets someone into a channel (private ones included).
pub async fn channel_add(env: &Env, channel: &str, user: &str, server: Option<&str>) -> Result<()> {
    let (channel, user) = (Name::channel(channel)?, Name::user(user)?);
    let client = env.one_shot(server).await?;
    client.link.add_member(&channel, &user).await?;
    println!("{user} is a member of #{channel}");
    Ok(())
}

/// `conclave channel remove CHANNEL USER`: ends someone's membership at once.
pub async fn channel_remove(
    env: &Env,
    channel: &str,
    user: &str,
    server: Option<&str>,
) -> Result<()> {
    let (channel, user) = (Name::channel(channel)?, Name::user(user)?);
    let client = env.one_shot(server).await?;
    client.link.remove_member(&channel, &user).await?;
    println!("{user} is no longer a member of #{channel}");
    Ok(())
}

pub async fn channel_list(env: &Env, server: Option<&str>) -> Result<()> {
    let client = env.one_shot(server).await?;
    let channels = client.link.list_channels().await?;
    if channels.is_empty() {
        eprintln!("no channels yet: `conclave channel create NAME` makes one");
    }
    for c in channels {
        let member = if c.member { "member" } else { "-" };
        println!(
            "#{:<24} {:<8} {:<6} {} messages",
            c.name, c.visibility, member, c.last_seq
        );
    }
    Ok(())
}

/// `conclave join CHANNEL [--invite TOKEN]`: a token from `channel invite` lets the user into
/// a private channel.
pub async fn join(env: &Env, name: &str, invite: Option<&str>, server: Option<&str>) -> Result<()> {
    let channel = Name::channel(name)?;
    let client = env.one_shot(server).await?;
    let invite = invite.map(str::to_owned);
    let joined = client
        .link
        .join_with(&channel, Resume::Live, invite)
        .await?;
    println!(
        "joined #{} ({} messages)",
        joined.channel.name, joined.channel.last_seq
    );
    Ok(())
}

pub async fn leave(env: &Env, name: &str, server: Option<&str>) -> Result<()> {
    let channel = Name::channel(name)?;
    let client = env.one_shot(server).await?;
    if client.link.leave(&channel).await? {
        println!("left #{channel}");
    } else {
        println!("left #{channel} here; you stay a member while another of your sessions is in it");
    }
    Ok(())
}

/// Reads the message text: the argument, or all of stdin for `-`.
fn message_text(text: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_owned());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .wrap_err("cannot read the message from stdin")?;
    Ok(input.trim_end_matches(['\n', '\r']).to_owned())
}

pub async fn whisper(env: &Env, to: &str, text: &str, server: Option<&str>) -> Result<()> {
    let to = SessionPath::parse(to)?;
    let text = message_text(text)?;
    let client = env.one_shot(server).await?;
    client.link.whisper(&to, &text).await?;
    println!("whispered to {to}");
    Ok(())
}

pub async fn who(env: &Env, channel: Option<&str>, server: Option<&str>) -> Result<()> {
    let channel = channel.map(Name::channel).transpose()?;
    let client = env.one_shot(server).await?;
    let report = client.link.who(channel.as_ref()).await?;
    if let Some(channel) = &channel {
        let online: std::collections::HashSet<&Name> =
            report.sessions.iter().map(|s| &s.path.user).collect();
        println!("#{channel}: {} members", report.members.len());
        for member in &report.members {
            let state = if online.contains(member) {
                "online"
            } else {
                "offline"
            };
            println!("  {member:<24} {state}");
        }
    }
    for s in &report.sessions {
        println!("{:<40} {}", s.path.to_string(), s.kind);
    }
    if report.truncated {
        println!(
            "(more: the server names at most {} sessions and {} members)",
            crate::net::protocol::MAX_WHO_ENTRIES,
            crate::net::protocol::MAX_WHO_ENTRIES
        );
    }
    Ok(())
}

/// `conclave machine invite NAME`: a one-time code for the new machine to enroll with.
pub async fn machine_invite(env: &Env, name: &str, server: Option<&str>) -> Result<()> {
    let machine = Name::machine(name)?;
    let client = env.as_person(server).await?;
    let invite = client.link.invite_machine(&machine).await?;
    println!(
        "On the new machine, within {} minutes, run:\n\n    conclave machine enroll {} --server {}\n\nIt becomes {}/{machine}. The code works once.",
        (invite.expires - chrono::Utc::now().timestamp_millis()).max(0) / 60_000 + 1,
        invite.code,
        client.server,
        client.path.user,
    );
    Ok(())
}

/// `conclave machine enroll CODE`: enrolls this machine's key (made if missing) with a code
/// from `machine invite`, and makes that server this machine's default.
pub async fn machine_enroll(env: &Env, code: &str, server: Option<&str>) -> Result<()> {
    let setup = Setup::Enroll {
        code: code.trim().to_owned(),
    };
    let client = env.one_shot_as(server, setup).await?;
    let path = &client.path;
    println!("enrolled this machine as {}/{}", path.user, path.machine);
    Ok(())
}

pub async fn machine_list(env: &Env, server: Option<&str>) -> Result<()> {
    let client = env.one_shot(server).await?;
    for m in client.link.list_machines().await? {
        let this = if m.name == client.path.machine {
            " (this machine)"
        } else {
            ""
        };
        println!("{:<24} {}{this}", m.name.as_str(), m.public_key);
    }
    Ok(())
}

pub async fn machine_remove(env: &Env, name: &str, server: Option<&str>) -> Result<()> {
    let machine = Name::machine(name)?;
    let client = env.as_person(server).await?;
    client.link.remove_machine(&machine).await?;
    println!("removed machine {}/{machine}", client.path.user);
    Ok(())
}

/// The config directory: the flag, else the environment, else the platform default.
pub fn config_dir(explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(crate::net::config::default_config_dir, Path::to_path_buf)
}

/// `conclave perm set CHANNEL LEVEL`: records an agent autonomy level in the config file;
/// running agents pick it up within seconds.
pub fn perm_set(env: &Env, channel: &str, level: Autonomy) -> Result<()> {
    let key = autonomy_key(channel)?;
    let mut config = ClientConfig::load(&env.config_dir)?;
    config.autonomy.insert(key.clone(), level);
    config.save(&env.config_dir)?;
    println!("agents: {} = {}", autonomy_place(&key), level);
    Ok(())
}

/// `conclave perm show`.
pub fn perm_show(env: &Env) -> Result<()> {
    let config = ClientConfig::load(&env.config_dir)?;
    if !config.autonomy.contains_key(&AutonomyKey::Default) {
        println!("{:<24} notify (built in)", "default");
    }
    for (key, level) in &config.autonomy {
        println!("{:<24} {}", autonomy_place(key), level);
    }
    Ok(())
}

/// `conclave serve --stop`: stops the server running on `data_dir` and waits until it has.
pub async fn stop_server(data_dir: &Path) -> Result<()> {
    match crate::net::local::stop(data_dir, std::time::Duration::from_secs(15)).await? {
        Some(stopped) => println!("stopped the server (pid {}, {})", stopped.pid, stopped.addr),
        None => println!("no server is running on {}", data_dir.display()),
    }
    Ok(())
}
