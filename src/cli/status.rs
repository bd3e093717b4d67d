//! `conclave status`: everything a person needs to know when something does not work, in one
//! place: which server, whether it answers, who this machine is there, where the files are,
//! and whether a local server runs (and where it logs).

use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::Result;

use crate::net::client::{self, Opening, Setup};
use crate::net::config::{CONFIG_FILE, ClientConfig};
use crate::net::identity::KEY_FILE;
use crate::net::local;

use super::Env;

/// How long `status` waits for the server to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// One line of the report: a label and what was found.
fn line(label: &str, value: impl std::fmt::Display) {
    println!("{label:<13}{value}");
}

pub async fn status(env: &Env, server: Option<&str>, data_dir: &Path) -> Result<()> {
    let config_dir = &env.config_dir;
    let config = ClientConfig::load(config_dir)?;
    let url = config.resolve_server(server)?;
    let has_key = config_dir.join(KEY_FILE).exists();
    line("config", config_dir.join(CONFIG_FILE).display());
    line(
        "key",
        if has_key {
            config_dir.join(KEY_FILE).display().to_string()
        } else {
            "none yet (`conclave tui` or `conclave register NAME` makes one)".into()
        },
    );
    line("server", &url);
    line(
        "user",
        config
            .user_at(&url)
            .as_deref()
            .unwrap_or("not registered (`conclave tui` registers you on a local server)"),
    );
    line("reachable", reach(env, server, has_key).await);
    match local::running(data_dir)? {
        Some(running) => line(
            "local server",
            format!(
                "running, pid {} on {} (data {})",
                running.pid,
                running.addr,
                data_dir.display()
            ),
        ),
        None => line(
            "local server",
            format!("not running (data {})", data_dir.display()),
        ),
    }
    line("server log", local::local_log(config_dir).display());
    line("tui log", config_dir.join("tui.log").display());
    Ok(())
}

/// Whether the server answers, and as whom this machine signs in.
async fn reach(env: &Env, server: Option<&str>, has_key: bool) -> String {
    if !has_key {
        return "not tried: no key".into();
    }
    let opening = Opening {
        config_dir: env.config_dir.clone(),
        server: server.map(str::to_owned),
        handle: None,
        default_handle: "status".into(),
        kind: env.kind(),
        persistent: false,
        setup: Setup::Key,
        identity: None,
        registry: None,
    };
    match tokio::time::timeout(REACH_TIMEOUT, client::open(opening, |_, _| {})).await {
        Ok(Ok(session)) => format!("yes, signed in as {}", session.path),
        Ok(Err(e)) => format!("no: {e}"),
        Err(_) => format!("no answer within {} s", REACH_TIMEOUT.as_secs()),
    }
}
