//! The server-wide governing verbs: `conclave admin ban|unban|users` (server admins, named by
//! `serve --admin`) and `conclave audit` (who did what, newest first). They connect as the
//! person at the terminal, since the server takes them from people's sessions only; its
//! refusals come back as one line naming the rule.

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, bail};

use crate::net::names::Name;
use crate::net::protocol::{
    AuditEntry, ClientFrame, MAX_AUDIT_PAGE, ServerFrame, UserInfo, duration_in_words,
    remaining_in_words,
};

use super::moderation::{Sanction, expect_done, millis};
use super::{Env, Format, local_time, printable, rfc3339};

/// `conclave admin ...`.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Ban a user from the server: their sessions close now and sign-ins are refused
    Ban {
        #[command(flatten)]
        sanction: Sanction,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// Lift a user's server ban
    Unban {
        /// The banned user
        #[arg(value_parser = Name::user)]
        user: Name,
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
    /// List every user: machines, sessions online, admin, ban
    Users {
        /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
        #[arg(long)]
        server: Option<String>,
    },
}

/// `conclave audit [CHANNEL]`.
#[derive(Args)]
pub struct AuditArgs {
    /// One channel's log (its moderators and owner) [default: what you may see: everything
    /// for a server admin, else your own acts and those in channels you moderate]
    #[arg(value_parser = Name::channel)]
    channel: Option<Name>,
    /// How many entries, newest first
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
    #[arg(long)]
    server: Option<String>,
}

/// Runs one `conclave admin` verb.
pub async fn run(env: &Env, command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Ban { sanction, server } => ban_user(env, sanction, server.as_deref()).await,
        AdminCommand::Unban { user, server } => unban_user(env, user, server.as_deref()).await,
        AdminCommand::Users { server } => users(env, server.as_deref()).await,
    }
}

/// `admin ban USER [--for DURATION] [--reason TEXT]`.
async fn ban_user(env: &Env, sanction: Sanction, server: Option<&str>) -> Result<()> {
    let Sanction { user, span, reason } = sanction;
    let client = env.as_person(server).await?;
    let frame = ClientFrame::BanUser {
        id: 0,
        user: user.clone(),
        for_ms: millis(span),
        reason,
    };
    expect_done(&client.link, frame).await?;
    let span = millis(span).map_or("until unbanned".into(), |ms| {
        format!("for {}", duration_in_words(ms))
    });
    println!("banned {user} from the server {span}");
    Ok(())
}

/// `admin unban USER`.
async fn unban_user(env: &Env, user: Name, server: Option<&str>) -> Result<()> {
    let client = env.as_person(server).await?;
    expect_done(
        &client.link,
        ClientFrame::UnbanUser {
            id: 0,
            user: user.clone(),
        },
    )
    .await?;
    println!("unbanned {user} from the server");
    Ok(())
}

/// `admin users`: every user, a page at a time, as one table.
async fn users(env: &Env, server: Option<&str>) -> Result<()> {
    let client = env.as_person(server).await?;
    let mut after = None;
    loop {
        let frame = ClientFrame::ListUsers {
            id: 0,
            after: after.clone(),
            limit: None,
        };
        let ServerFrame::Users { users, more, .. } = client.link.request(frame).await? else {
            bail!("unexpected answer from the server to a user list");
        };
        if after.is_none() {
            println!(
                "{:<24} {:>8} {:>6}  {:<5}  banned",
                "name", "machines", "online", "admin"
            );
        }
        for user in &users {
            println!("{}", user_row(user));
        }
        after = users.last().map(|u| u.name.clone());
        if !more || after.is_none() {
            return Ok(());
        }
    }
}

fn user_row(u: &UserInfo) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let banned = match (u.banned_until, &u.ban_reason) {
        (Some(until), Some(reason)) => {
            format!("{}: {}", remaining_in_words(until, now), printable(reason))
        }
        (Some(until), None) => remaining_in_words(until, now),
        (None, _) => "-".into(),
    };
    let admin = if u.admin { "admin" } else { "-" };
    format!(
        "{:<24} {:>8} {:>6}  {admin:<5}  {banned}",
        u.name.as_str(),
        u.machines,
        u.online
    )
}

/// `audit [CHANNEL] [--last N] [--format text|json]`: newest first, paging back by id.
pub async fn audit(env: &Env, args: AuditArgs) -> Result<()> {
    let client = env.as_person(args.server.as_deref()).await?;
    let wanted = args.last as usize;
    let mut shown = 0;
    let mut before = None;
    while shown < wanted {
        let frame = ClientFrame::Audit {
            id: 0,
            channel: args.channel.clone(),
            before,
            limit: (wanted - shown).min(MAX_AUDIT_PAGE as usize) as u32,
        };
        let ServerFrame::Audit { entries, more, .. } = client.link.request(frame).await? else {
            bail!("unexpected answer from the server to an audit request");
        };
        for entry in entries.iter().take(wanted - shown) {
            match args.format {
                Format::Text => println!("{}", audit_line(entry)),
                Format::Json => println!("{}", audit_json(entry)),
            }
        }
        shown += entries.len();
        before = entries.iter().map(|e| e.id).min();
        if !more || before.is_none() {
            break;
        }
    }
    if shown == 0 && args.format == Format::Text {
        eprintln!("the audit log has nothing you may see here yet");
    }
    Ok(())
}

/// `2026-11-26 10:12:03  alice/desk/tui  kick  #ops  bob  kicked bob (looping)`.
fn audit_line(e: &AuditEntry) -> String {
    let channel = e.channel.as_ref().map_or("-".into(), |c| format!("#{c}"));
    let target = e.target.as_deref().map_or("-".into(), printable);
    let why = e
        .reason
        .as_deref()
        .map(|r| format!(" ({})", printable(r)))
        .unwrap_or_default();
    format!(
        "{}  {}  {}  {channel}  {target}  {}{why}",
        local_time(e.ts),
        e.by,
        e.action,
        printable(&e.detail)
    )
}

fn audit_json(e: &AuditEntry) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "ts": rfc3339(e.ts),
        "by": e.by.to_string(),
        "action": e.action,
        "channel": e.channel.as_ref().map(Name::as_str),
        "target": e.target,
        "detail": e.detail,
        "reason": e.reason,
    })
}
