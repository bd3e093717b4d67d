//! `conclave agent`'s command line, and `--print-config claude`: the commands that register
//! this very agent with Claude Code. The printed command reproduces every flag given (paths
//! made absolute), so Claude Code starts the agent under the same identity, on the same
//! server, with the same levels. A new flag belongs in [`AgentArgs`] and in [`agent_flags`];
//! a round-trip test fails until both know it.

use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr, bail};
use serde_json::{Map, Value, json};

use crate::net::client::CA_FILE_ENV;
use crate::net::config::AutonomyKey;
use crate::net::protocol::Autonomy;

use super::core::parse_perm;
use super::{AgentOptions, Format};

/// How many of a channel's newest messages start unread for a session that never read it.
pub const DEFAULT_BACKLOG: u64 = 20;

/// The flags of `conclave agent`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AgentArgs {
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT (repeatable: one link each;
    /// the first is where bare channel names go) [default: the default server, and those
    /// `--join CHANNEL@ALIAS` names]
    #[arg(long = "server", value_name = "ALIAS|URL")]
    pub servers: Vec<String>,
    /// Session handle [default: the working directory's name, suffixed if taken]
    #[arg(long = "as", value_name = "HANDLE")]
    pub handle: Option<String>,
    /// Join this channel at start, CHANNEL@ALIAS on another server (repeatable)
    #[arg(long = "join", value_name = "CHANNEL[@ALIAS]")]
    pub join: Vec<String>,
    /// Autonomy in a channel: mute, notify, converse or act (repeatable; also default=,
    /// whispers=; '#NAME=' is always a channel, even #whispers)
    #[arg(long = "perm", value_name = "CHANNEL=LEVEL", value_parser = parse_perm)]
    pub perms: Vec<(AutonomyKey, Autonomy)>,
    #[arg(long, value_enum, default_value = "mcp")]
    pub format: Format,
    /// In a channel this session never read, only the newest N messages start unread
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG)]
    pub backlog: u64,
    /// Print how to register this agent with a client (e.g. `claude`) and exit
    #[arg(long, value_name = "CLIENT", value_parser = ["claude"])]
    pub print_config: Option<String>,
}

/// `conclave agent`: prints the client config if asked, else runs the agent.
/// `explicit_config_dir` is the `--config-dir` (or `CONCLAVE_CONFIG_DIR`) given, if any.
pub async fn main(
    args: AgentArgs,
    explicit_config_dir: Option<&Path>,
    config_dir: PathBuf,
) -> Result<()> {
    if args.print_config.is_some() {
        let exe = std::env::current_exe().wrap_err("cannot find the conclave binary")?;
        let ca_file = std::env::var_os(CA_FILE_ENV).map(PathBuf::from);
        let text = claude_config(&args, explicit_config_dir, &exe, ca_file.as_deref())?;
        print!("{text}");
        return Ok(());
    }
    let options = AgentOptions {
        config_dir,
        servers: args.servers,
        handle: args.handle,
        join: args.join,
        perms: args.perms,
        format: args.format,
        backlog: args.backlog,
    };
    super::run(options).await
}

/// The `agent` flags that reproduce `args` (without `--print-config`).
pub fn agent_flags(args: &AgentArgs) -> Vec<String> {
    let mut flags = Vec::new();
    let mut flag = |name: &str, value: String| flags.extend([name.to_owned(), value]);
    for server in &args.servers {
        flag("--server", server.clone());
    }
    if let Some(handle) = &args.handle {
        flag("--as", handle.clone());
    }
    for channel in &args.join {
        flag("--join", channel.clone());
    }
    for (key, level) in &args.perms {
        flag("--perm", format!("{key}={level}"));
    }
    if args.format != Format::Mcp {
        flag("--format", "jsonl".to_owned());
    }
    if args.backlog != DEFAULT_BACKLOG {
        flag("--backlog", args.backlog.to_string());
    }
    flags
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).wrap_err_with(|| format!("cannot make {} absolute", path.display()))
}

/// What `--print-config claude` prints: a `claude mcp add-json` command whose JSON starts
/// `exe` with the same flags (and the same config dir and CA file, as absolute paths), then
/// the command that launches Claude Code with it as a channel.
pub fn claude_config(
    args: &AgentArgs,
    config_dir: Option<&Path>,
    exe: &Path,
    ca_file: Option<&Path>,
) -> Result<String> {
    if args.format != Format::Mcp {
        bail!(
            "Claude Code speaks MCP: --print-config claude cannot be combined with --format jsonl"
        );
    }
    let mut argv = Vec::new();
    if let Some(dir) = config_dir {
        argv.extend([
            "--config-dir".to_owned(),
            absolute(dir)?.display().to_string(),
        ]);
    }
    argv.push("agent".to_owned());
    argv.extend(agent_flags(args));
    let mut server = Map::new();
    server.insert("type".into(), json!("stdio"));
    server.insert(
        "command".into(),
        json!(absolute(exe)?.display().to_string()),
    );
    server.insert("args".into(), json!(argv));
    if let Some(ca_file) = ca_file {
        let env = json!({ CA_FILE_ENV: absolute(ca_file)?.display().to_string() });
        server.insert("env".into(), env);
    }
    let json = Value::Object(server).to_string();
    Ok(format!(
        "claude mcp add-json --scope local conclave {}\n\
         claude --dangerously-load-development-channels server:conclave\n",
        shell_quote(&json)
    ))
}

/// Quotes text for a POSIX shell: single quotes, with each `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn parse(argv: &[&str]) -> AgentArgs {
        Line::try_parse_from([&["agent"], argv].concat())
            .unwrap()
            .args
    }

    #[test]
    fn the_printed_flags_parse_back_to_the_same_agent() {
        let given = parse(&[
            "--server",
            "ws://example:7420",
            "--as",
            "reviewer",
            "--join",
            "general",
            "--join",
            "ops",
            "--perm",
            "general=converse",
            "--perm",
            "#whispers=act",
            "--perm",
            "whispers=notify",
            "--perm",
            "default=mute",
            "--backlog",
            "5",
            "--print-config",
            "claude",
        ]);
        let flags = agent_flags(&given);
        let again = parse(&flags.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            again,
            AgentArgs {
                print_config: None,
                ..given
            }
        );
        assert!(!flags.iter().any(|f| f.contains("print")));
        assert_eq!(agent_flags(&parse(&[])), Vec::<String>::new());
    }

    #[test]
    fn the_claude_command_carries_absolute_paths_and_quotes_safely() {
        let args = parse(&["--as", "it's", "--join", "general"]);
        let text = claude_config(
            &args,
            Some(Path::new("relative/conf")),
            Path::new("/opt/conclave"),
            Some(Path::new("ca.pem")),
        )
        .unwrap();
        let first = text.lines().next().unwrap();
        let quoted = first
            .strip_prefix("claude mcp add-json --scope local conclave '")
            .unwrap()
            .strip_suffix('\'')
            .unwrap();
        let config: Value = serde_json::from_str(&quoted.replace(r"'\''", "'")).unwrap();
        assert_eq!(config["command"], "/opt/conclave");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            config["args"],
            json!([
                "--config-dir",
                cwd.join("relative/conf").display().to_string(),
                "agent",
                "--as",
                "it's",
                "--join",
                "general"
            ])
        );
        assert_eq!(
            config["env"][CA_FILE_ENV],
            cwd.join("ca.pem").display().to_string()
        );
        assert!(text.contains("--dangerously-load-development-channels server:conclave"));
        let jsonl = parse(&["--format", "jsonl"]);
        let e = claude_config(&jsonl, None, Path::new("/x"), None).unwrap_err();
        assert!(e.to_string().contains("--format jsonl"), "{e}");
    }
}
