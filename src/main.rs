//! The `conclave` binary: parse the command line, set up errors and logging, dispatch.
//! Verb bodies live in `conclave::cli`, the server in `conclave::server`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use color_eyre::eyre::{Result, bail};

use conclave::app::TuiOptions;
use conclave::cli::servers::on_server;
use conclave::cli::{self, Env, Format};
use conclave::net::config::{DEFAULT_BIND, default_data_dir};
use conclave::net::names::Name;
use conclave::net::protocol::{Autonomy, Visibility};
use conclave::server::{self, ServerConfig};

#[derive(Parser)]
#[command(
    name = "conclave",
    version,
    disable_version_flag = true,
    about = "Shared chat channels for AI coding agents and the people who supervise them"
)]
struct Cli {
    /// Print the version
    #[arg(short = 'v', short_alias = 'V', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Where the key and config.toml live [default: $XDG_CONFIG_HOME/conclave]
    #[arg(long, global = true, env = "CONCLAVE_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server
    Serve {
        /// Address to listen on (port 0 picks a free one)
        #[arg(long, default_value = DEFAULT_BIND)]
        bind: String,
        /// Where the database lives [default: $XDG_DATA_HOME/conclave]
        #[arg(long, conflicts_with = "ephemeral")]
        data_dir: Option<PathBuf>,
        /// Keep everything in memory; nothing survives a restart
        #[arg(long)]
        ephemeral: bool,
        /// Keep everything in a PostgreSQL database, shared by every instance started with
        /// the same URL: postgres://USER[:PASS]@HOST[:PORT]/DB
        #[arg(long, value_name = "URL", conflicts_with_all = ["data_dir", "ephemeral"])]
        store: Option<String>,
        /// The NATS server the instances sharing a PostgreSQL store talk over (every
        /// instance on one store needs the same): nats://HOST:PORT
        #[arg(long, value_name = "URL")]
        bus: Option<String>,
        /// A user with server-wide admin rights (repeatable)
        #[arg(long = "admin", value_name = "USER")]
        admins: Vec<String>,
        /// Days to keep messages
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
        retention_days: u32,
        #[command(flatten)]
        limits: server::limit_flags::LimitArgs,
        /// Stop the server running on the data directory (the local one by default) and exit
        #[arg(long)]
        stop: bool,
    },
    /// The terminal client (with nothing configured: starts a local server and registers you)
    Tui {
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Create this machine's key if missing and print its public half
    Key {
        /// Make and register a human key instead: sealed under a passphrase, it becomes the
        /// only key this machine's human sessions (the TUI) may sign in with
        #[arg(long)]
        human: bool,
        /// Read the human key's passphrase from stdin instead of the terminal
        #[arg(long, requires = "human")]
        passphrase_stdin: bool,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long, requires = "human")]
        server: Option<String>,
    },
    /// Claim a user name on a server and remember the server (the first one is the default)
    Register {
        /// The user name to claim
        name: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
        /// This machine's name [default: the host name]
        #[arg(long)]
        machine: Option<String>,
        /// What to call the server in `--server` and `CHANNEL@ALIAS` [default: its host name]
        #[arg(long)]
        alias: Option<String>,
    },
    /// Create and list channels, manage their members, and govern them (kick, ban, mute, roles, ...)
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// The servers you belong to: list them (the default marked *), forget one, or choose the default
    Servers {
        #[command(subcommand)]
        command: Option<cli::servers::ServersCommand>,
    },
    /// Join a channel (with an invite token from `channel invite`: a private one too)
    Join {
        /// The channel, e.g. general or #general; general@ALIAS on another of your servers
        channel: String,
        /// An invite token from `conclave channel invite`
        #[arg(long, value_name = "TOKEN")]
        invite: Option<String>,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Leave a channel
    Leave {
        /// The channel to leave (CHANNEL@ALIAS on another of your servers)
        channel: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Post a message (TEXT `-` reads stdin)
    Send {
        /// The channel to post in (CHANNEL@ALIAS on another of your servers), or @USER
        channel: String,
        /// The message; `-` reads it from stdin
        text: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
        /// Session handle to send as
        #[arg(long = "as", value_name = "HANDLE")]
        handle: Option<String>,
        /// Answer this message of the channel (its seq, as `tail` shows it)
        #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(u64).range(1..))]
        reply_to: Option<u64>,
    },
    /// Message a user in your direct conversation with them (TEXT `-` reads stdin); `tail @USER` follows it
    Dm {
        /// The user (USER@ALIAS on another of your servers)
        user: String,
        /// The message; `-` reads it from stdin
        text: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT [default: the default server]
        #[arg(long)]
        server: Option<String>,
    },
    /// Edit one of your messages (TEXT `-` reads stdin)
    Edit(cli::changes::EditArgs),
    /// Delete a message: your own, or any in a channel you moderate
    Delete(cli::changes::DeleteArgs),
    /// React to a message with an emoji or a word, or take the reaction back
    React(cli::changes::ReactArgs),
    /// Whisper to one live session, by path user/machine/session (TEXT `-` reads stdin)
    Whisper {
        /// The session to whisper to, user/machine/session (see `conclave who`)
        path: String,
        /// The message; `-` reads it from stdin
        text: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Print a channel's messages as they arrive, across reconnects, until interrupted
    Tail {
        /// The channel to print (CHANNEL@ALIAS on another of your servers), or @USER: your direct conversation with them
        channel: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
        /// Start after this sequence number
        #[arg(long, conflicts_with = "last")]
        since: Option<u64>,
        /// Start with the last N messages
        #[arg(long)]
        last: Option<u64>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Who is online on the server, or in a channel
    Who {
        /// A channel (CHANNEL@ALIAS on another of your servers): its members and who receives it [default: everyone online]
        channel: Option<String>,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Ban users from the server, lift bans, list users (server admins)
    Admin {
        #[command(subcommand)]
        command: cli::admin::AdminCommand,
    },
    /// Who did what: moderation acts, invites, bans, newest first
    Audit(cli::admin::AuditArgs),
    /// Messages you may read that hold every word (and "quoted phrase"), newest first
    Search(cli::search::SearchArgs),
    /// Enroll, list or remove this user's machines
    Machine {
        #[command(subcommand)]
        command: MachineCommand,
    },
    /// Run headless for Claude Code (MCP channel on stdio) or any program (JSON lines)
    Agent(conclave::agent::AgentArgs),
    /// Show or set agents' autonomy per channel (in the config file; running agents follow)
    Perm {
        #[command(subcommand)]
        command: PermCommand,
    },
    /// Measure fan-out, latency, acknowledged sends and memory per idle session
    Bench(cli::bench::BenchArgs),
    /// Where things are and whether they work: server, sign-in, config, local server, logs
    Status {
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
        /// The local server's data directory [default: $XDG_DATA_HOME/conclave]
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print a shell completion script (e.g. `conclave completions bash > ~/.local/share/bash-completion/completions/conclave`)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `conclave man | man -l -`)
    Man,
    /// Print the version
    Version,
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Create a channel (you become its owner)
    Create {
        /// The new channel's name
        name: String,
        #[arg(long, value_enum, default_value = "public")]
        visibility: Visibility,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// List the channels you can see
    List {
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Make a user a member (the way into a private channel; creator or server admin)
    Add {
        /// The channel
        channel: String,
        /// The user to let in
        user: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// End a user's membership; their sessions stop receiving at once (creator or admin)
    Remove {
        /// The channel
        channel: String,
        /// The user whose membership ends
        user: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    #[command(flatten)]
    Moderation(cli::moderation::ChannelModeration),
}

#[derive(Subcommand)]
enum PermCommand {
    /// Set a channel's level (CHANNEL may also be `default` or `whispers`; `#whispers` is the channel)
    Set {
        /// `#NAME` for a channel, or `default` or `whispers`
        channel: String,
        /// mute, notify, converse or act
        #[arg(value_enum)]
        level: Autonomy,
    },
    /// Show the configured levels
    Show,
}

#[derive(Subcommand)]
enum MachineCommand {
    /// Make a one-time code that lets another machine enroll its own key as NAME
    Invite {
        /// A name for the new machine
        name: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Enroll this machine with a code from `conclave machine invite` (makes a key if missing)
    Enroll {
        /// The code `machine invite` printed
        code: String,
        /// Server address, ws://HOST:PORT (as `machine invite` printed it)
        #[arg(long)]
        server: Option<String>,
    },
    /// List your machines
    List {
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Remove a machine: its key stops working and its sessions drop at once
    Remove {
        /// The machine to remove
        name: String,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal: a log file (zero set-up's serve.log) stays text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// The TUI owns the screen: its logs go to `tui.log` in the config dir.
fn init_file_tracing(config_dir: &std::path::Path) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = std::fs::create_dir_all(config_dir);
    match std::fs::File::create(config_dir.join("tui.log")) {
        Ok(file) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        Err(_) => tracing_subscriber::fmt().with_writer(std::io::sink).init(),
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        done => Ok(done?),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Panics still get color-eyre's full report; ordinary failures get one plain line.
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .install();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let env = Env {
        config_dir: cli::config_dir(cli.config_dir.as_deref()),
    };
    // stdout belongs to the protocol in `agent`, the screen to `tui`: logs never go there.
    match cli.command {
        Command::Serve { stop: false, .. } => init_tracing("info"),
        Command::Tui { .. } => init_file_tracing(&env.config_dir),
        _ => init_tracing("warn"),
    }

    match cli.command {
        Command::Serve {
            bind,
            data_dir,
            ephemeral,
            store,
            bus,
            admins,
            retention_days,
            limits,
            stop,
        } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            if stop {
                return cli::stop_server(&data_dir).await;
            }
            if bus.is_some() && store.is_none() {
                bail!(
                    "--bus links instances that share one PostgreSQL store: give --store postgres://... as well (a SQLite server is one instance and needs no bus)"
                );
            }
            let admins = admins
                .iter()
                .map(|a| Name::user(a))
                .collect::<Result<_, _>>()?;
            let config = ServerConfig {
                data_dir: (!ephemeral && store.is_none()).then_some(data_dir),
                store,
                bus,
                admins,
                retention: Duration::from_secs(u64::from(retention_days) * 24 * 3600),
                heartbeat: server::DEFAULT_HEARTBEAT,
                limits: limits.into(),
            };
            server::serve(&bind, config).await
        }
        Command::Status { server, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            cli::status(&env, server.as_deref(), &data_dir).await
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "conclave", &mut script);
            print_all(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            print_all(&page)
        }
        Command::Version => {
            println!("conclave {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Key {
            human: true,
            passphrase_stdin,
            server,
        } => cli::human_key(&env, server.as_deref(), passphrase_stdin).await,
        Command::Key { .. } => cli::key(&env),
        Command::Register {
            name,
            server,
            machine,
            alias,
        } => {
            let (machine, alias) = (machine.as_deref(), alias.as_deref());
            cli::register(&env, &name, server.as_deref(), machine, alias).await
        }
        Command::Channel { command } => match command {
            ChannelCommand::Create {
                name,
                visibility,
                server,
            } => cli::channel_create(&env, &name, visibility, server.as_deref()).await,
            ChannelCommand::List { server } => cli::channel_list(&env, server.as_deref()).await,
            ChannelCommand::Add {
                channel,
                user,
                server,
            } => cli::channel_add(&env, &channel, &user, server.as_deref()).await,
            ChannelCommand::Remove {
                channel,
                user,
                server,
            } => cli::channel_remove(&env, &channel, &user, server.as_deref()).await,
            ChannelCommand::Moderation(command) => cli::moderation::run(&env, command).await,
        },
        Command::Admin { command } => cli::admin::run(&env, command).await,
        Command::Audit(args) => cli::admin::audit(&env, args).await,
        Command::Search(args) => cli::search::search(&env, args).await,
        Command::Servers { command } => cli::servers::run(&env, command).await,
        Command::Join {
            channel,
            invite,
            server,
        } => {
            let (channel, server) = on_server(&channel, server.as_deref())?;
            cli::join(&env, channel, invite.as_deref(), server).await
        }
        Command::Leave { channel, server } => {
            let (channel, server) = on_server(&channel, server.as_deref())?;
            cli::leave(&env, channel, server).await
        }
        Command::Send {
            channel,
            text,
            server,
            handle,
            reply_to,
        } => {
            let (channel, server) = on_server(&channel, server.as_deref())?;
            cli::send(&env, channel, &text, reply_to, server, handle.as_deref()).await
        }
        Command::Dm { user, text, server } => {
            cli::send::dm(&env, &user, &text, server.as_deref()).await
        }
        Command::Edit(args) => cli::changes::edit(&env, args).await,
        Command::Delete(args) => cli::changes::delete(&env, args).await,
        Command::React(args) => cli::changes::react(&env, args).await,
        Command::Whisper { path, text, server } => {
            cli::whisper(&env, &path, &text, server.as_deref()).await
        }
        Command::Tail {
            channel,
            server,
            since,
            last,
            format,
        } => {
            let resume = cli::resume_from(since, last)?;
            let (channel, server) = on_server(&channel, server.as_deref())?;
            cli::tail(&env, channel, server, resume, format).await
        }
        Command::Who { channel, server } => match channel.as_deref() {
            Some(channel) => {
                let (channel, server) = on_server(channel, server.as_deref())?;
                cli::who(&env, Some(channel), server).await
            }
            None => cli::who(&env, None, server.as_deref()).await,
        },
        Command::Machine { command } => match command {
            MachineCommand::Invite { name, server } => {
                cli::machine_invite(&env, &name, server.as_deref()).await
            }
            MachineCommand::Enroll { code, server } => {
                cli::machine_enroll(&env, &code, server.as_deref()).await
            }
            MachineCommand::List { server } => cli::machine_list(&env, server.as_deref()).await,
            MachineCommand::Remove { name, server } => {
                cli::machine_remove(&env, &name, server.as_deref()).await
            }
        },
        Command::Tui { server } => {
            let options = TuiOptions {
                config_dir: env.config_dir.clone(),
                server,
            };
            conclave::app::run(options).await
        }
        Command::Agent(args) => {
            conclave::agent::main(args, cli.config_dir.as_deref(), env.config_dir.clone()).await
        }
        Command::Perm { command } => match command {
            PermCommand::Set { channel, level } => cli::perm_set(&env, &channel, level),
            PermCommand::Show => cli::perm_show(&env),
        },
        Command::Bench(args) => cli::bench::run(args).await,
    }
}
