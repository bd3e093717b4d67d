//! `conclave servers`: the servers this person belongs to, by alias, and which is the
//! default; and `CHANNEL@ALIAS`, the way a verb names a channel on another server.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, bail};

use super::Env;
use crate::net::client::CA_FILE_ENV;
use crate::net::config::ClientConfig;
use crate::net::servers::server_urls;
use crate::net::servers::split_channel;

/// How long `servers` waits for each server to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(clap::Subcommand)]
pub enum ServersCommand {
    /// List the servers: alias (the default marked *), address, user, reachable or not
    List,
    /// Forget a server (its account there stays)
    Remove { alias: String },
    /// Make a server the default of every verb
    Default { alias: String },
}

pub async fn run(env: &Env, command: Option<ServersCommand>) -> Result<()> {
    match command.unwrap_or(ServersCommand::List) {
        ServersCommand::List => list(env).await,
        ServersCommand::Remove { alias } => remove(env, &alias),
        ServersCommand::Default { alias } => set_default(env, &alias),
    }
}

/// `conclave servers [list]`.
async fn list(env: &Env) -> Result<()> {
    let config = ClientConfig::load(&env.config_dir)?;
    let servers = config.servers();
    if servers.is_empty() {
        println!("no servers yet: `conclave register NAME --server URL` adds one");
        return Ok(());
    }
    let default = config.default_server_alias();
    let checks = servers
        .values()
        .map(|entry| reachable(entry.url.clone()))
        .collect::<Vec<_>>();
    let reach = futures_util::future::join_all(checks).await;
    println!(
        "  {:<20} {:<32} {:<12} reachable",
        "alias", "address", "user"
    );
    for ((alias, entry), reach) in servers.iter().zip(reach) {
        let mark = if default.as_ref() == Some(alias) {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} {:<20} {:<32} {:<12} {reach}",
            alias.as_str(),
            entry.url,
            entry.user.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Whether some address of the server answers a WebSocket upgrade in time.
async fn reachable(url: String) -> String {
    let ca_file = std::env::var_os(CA_FILE_ENV).map(PathBuf::from);
    let mut last = String::from("no address");
    for address in server_urls(&url) {
        let dial = crate::net::ws::connect(address, ca_file.clone());
        match tokio::time::timeout(REACH_TIMEOUT, dial).await {
            Ok(Ok(_)) => return "yes".into(),
            Ok(Err(e)) => last = e.message,
            Err(_) => last = "no answer in time".into(),
        }
    }
    format!("no ({last})")
}

/// `conclave servers remove ALIAS`.
fn remove(env: &Env, alias: &str) -> Result<()> {
    let mut config = ClientConfig::load(&env.config_dir)?;
    let removed = config.remove_server(alias)?;
    config.save(&env.config_dir)?;
    println!("forgot `{alias}` ({})", removed.url);
    if let Some(default) = config.default_server_alias() {
        println!("the default is `{default}`");
    }
    Ok(())
}

/// `conclave servers default ALIAS`.
fn set_default(env: &Env, alias: &str) -> Result<()> {
    let mut config = ClientConfig::load(&env.config_dir)?;
    config.set_default_server(alias)?;
    config.save(&env.config_dir)?;
    println!("`{alias}` is the default server");
    Ok(())
}

/// A verb's channel and server: `general@work` names the server `work`, which `--server`
/// may repeat but not contradict.
pub fn on_server<'a>(
    channel: &'a str,
    server: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>)> {
    match (split_channel(channel), server) {
        ((name, Some(alias)), Some(other)) if other != alias => {
            bail!("{name}@{alias} names the server `{alias}`, but --server says `{other}`")
        }
        ((name, Some(alias)), _) => Ok((name, Some(alias))),
        ((name, None), server) => Ok((name, server)),
    }
}
