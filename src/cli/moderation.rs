//! `conclave channel kick|ban|unban|mute|unmute|role|topic|rename|archive|delete|invite|set|info`:
//! governing one channel. A verb that is a single moderation act is mapped to its
//! `ChannelAct` in `run` and carried out by `act`; the others (topic read, delete, invite,
//! info) have a function each. Acts connect as the person at the terminal (the server takes
//! them from people's sessions only), reads as any session. What a role may do is the
//! server's rule: a refusal comes back as one line naming it, and the verb fails with it.
//! The server-wide verbs (`admin`, `audit`) live in `admin.rs`.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, bail};

use crate::net::link::LinkHandle;
use crate::net::names::{Name, NameError, SessionPath};
use crate::net::protocol::{
    ChannelAct, ChannelDetails, ChannelSetting, ClientFrame, KickTarget, ReplyMode, Role,
    ServerFrame, duration_in_words, parse_duration, remaining_in_words,
};

use super::{Env, printable};

/// The channel a verb governs, and the server it lives on.
#[derive(Args)]
pub struct At {
    /// The channel, e.g. ops or #ops
    #[arg(value_parser = Name::channel)]
    channel: Name,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT (instances of one server: comma-separated) [default: the default server, else ws://127.0.0.1:7420]
    #[arg(long)]
    server: Option<String>,
}

/// Whom a ban or mute is for, how long and why.
#[derive(Args)]
pub struct Sanction {
    /// The user
    #[arg(value_parser = Name::user)]
    pub(super) user: Name,
    /// How long (30s, 10m, 2h, 7d) [default: until lifted]
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(super) span: Option<Duration>,
    /// Why, for the audit log (and the people it is done to)
    #[arg(long, value_name = "TEXT")]
    pub(super) reason: Option<String>,
}

/// A span as the wire carries it.
pub(super) fn millis(span: Option<Duration>) -> Option<u64> {
    span.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The channel moderation verbs (`conclave channel ...`), flattened into `channel`'s own.
#[derive(Subcommand)]
pub enum ChannelModeration {
    /// Remove a user (every session, and the membership) or one session from a channel now
    Kick {
        #[command(flatten)]
        at: At,
        /// A user, or one session as user/machine/session
        #[arg(value_name = "USER|PATH", value_parser = kick_target)]
        target: KickTarget,
        /// Also ban the user for this long (30s, 10m, 2h, 7d)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ban_for: Option<Duration>,
        /// Why, for the channel and the audit log
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Keep a user out: they cannot join, read or post (until unbanned, or for DURATION)
    Ban {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        sanction: Sanction,
    },
    /// Lift a user's ban from a channel
    Unban {
        #[command(flatten)]
        at: At,
        /// The banned user
        #[arg(value_parser = Name::user)]
        user: Name,
    },
    /// Let a member read but not post (until unmuted, or for DURATION)
    Mute {
        #[command(flatten)]
        at: At,
        #[command(flatten)]
        sanction: Sanction,
    },
    /// Let a muted member post again
    Unmute {
        #[command(flatten)]
        at: At,
        /// The muted member
        #[arg(value_parser = Name::user)]
        user: Name,
    },
    /// Give a member a role; `owner` hands the channel over (you become a moderator)
    Role {
        #[command(flatten)]
        at: At,
        /// The member
        #[arg(value_parser = Name::user)]
        user: Name,
        #[arg(value_enum)]
        role: Role,
    },
    /// Print the channel's topic, or set it (an empty TEXT clears it)
    Topic {
        #[command(flatten)]
        at: At,
        /// The new topic [default: print the current one]
        text: Option<String>,
    },
    /// Pin a message (moderators): it shows at the top of the channel (`--undo` unpins it)
    Pin {
        #[command(flatten)]
        at: At,
        /// The message's seq, as `tail` shows it
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
        /// Unpin instead
        #[arg(long)]
        undo: bool,
    },
    /// Rename a channel; its history and members follow
    Rename {
        #[command(flatten)]
        at: At,
        /// The channel's new name
        #[arg(value_parser = Name::channel)]
        new_name: Name,
    },
    /// Make a channel read-only for everyone (`--undo` makes it writable again)
    Archive {
        #[command(flatten)]
        at: At,
        /// Unarchive instead
        #[arg(long)]
        undo: bool,
    },
    /// Delete a channel and all its history (asks for the name again unless --yes)
    Delete {
        #[command(flatten)]
        at: At,
        /// Do not ask (needed when stdin is not a terminal)
        #[arg(long)]
        yes: bool,
    },
    /// Make an invite token that lets someone join (private channels included)
    Invite {
        #[command(flatten)]
        at: At,
        /// How many joins it allows [default: 1]
        #[arg(long, value_name = "N")]
        uses: Option<u32>,
        /// How long it is valid (30s, 10m, 2h, 7d) [default: 7d]
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// Revoke this token instead of making one
        #[arg(long, value_name = "TOKEN", conflicts_with_all = ["uses", "ttl"])]
        revoke: Option<String>,
        /// List the channel's open tokens instead of making one
        #[arg(long, conflicts_with_all = ["uses", "ttl", "revoke"])]
        list: bool,
    },
    /// Set a brake on agents: agent-turns N | reply-mode open|mention | slow SECONDS
    Set {
        #[command(flatten)]
        at: At,
        #[command(subcommand)]
        setting: SettingArg,
    },
    /// Show a channel in full: topic, owner, moderators, your role and mute, the brakes
    Info {
        #[command(flatten)]
        at: At,
    },
}

/// The settings `channel set` changes.
#[derive(Subcommand)]
pub enum SettingArg {
    /// Agent messages allowed in a row before the channel waits for a person (0: unlimited)
    AgentTurns { turns: u32 },
    /// When agents may post: `open`, or `mention` (only when mentioned or given the floor)
    ReplyMode {
        #[arg(value_enum)]
        mode: ReplyMode,
    },
    /// At most one message per agent session every SECONDS (0: off)
    Slow { seconds: u32 },
}

impl From<SettingArg> for ChannelSetting {
    fn from(arg: SettingArg) -> Self {
        match arg {
            SettingArg::AgentTurns { turns } => Self::AgentTurns { turns },
            SettingArg::ReplyMode { mode } => Self::ReplyMode { mode },
            SettingArg::Slow { seconds } => Self::Slow { seconds },
        }
    }
}

/// A kick's target: a user, or with slashes one session's path.
fn kick_target(text: &str) -> Result<KickTarget, NameError> {
    if text.contains('/') {
        SessionPath::parse(text).map(KickTarget::Session)
    } else {
        Name::user(text).map(KickTarget::User)
    }
}

/// Runs one `conclave channel` moderation verb: those that are one act go to `act`, the
/// others to their own function.
pub async fn run(env: &Env, command: ChannelModeration) -> Result<()> {
    use ChannelModeration as C;
    let (at, what, reason) = match command {
        C::Topic { at, text: None } => return show_topic(env, &at).await,
        C::Delete { at, yes } => return delete(env, &at, yes).await,
        C::Invite { at, list: true, .. } => return invites(env, &at).await,
        C::Invite {
            at,
            uses,
            ttl,
            revoke: None,
            ..
        } => return invite(env, &at, uses, ttl).await,
        C::Info { at } => return info(env, &at).await,
        C::Kick {
            at,
            target,
            ban_for,
            reason,
        } => {
            let ban_for_ms = millis(ban_for);
            (at, ChannelAct::Kick { target, ban_for_ms }, reason)
        }
        C::Ban { at, sanction: s } => {
            let (user, for_ms) = (s.user, millis(s.span));
            (at, ChannelAct::Ban { user, for_ms }, s.reason)
        }
        C::Unban { at, user } => (at, ChannelAct::Unban { user }, None),
        C::Mute { at, sanction: s } => {
            let (user, for_ms) = (s.user, millis(s.span));
            (at, ChannelAct::Mute { user, for_ms }, s.reason)
        }
        C::Unmute { at, user } => (at, ChannelAct::Unmute { user }, None),
        C::Role { at, user, role } => (at, ChannelAct::Role { user, role }, None),
        C::Topic {
            at,
            text: Some(topic),
        } => (at, ChannelAct::Topic { topic }, None),
        C::Pin {
            at,
            seq,
            undo: false,
        } => (at, ChannelAct::Pin { seq }, None),
        C::Pin {
            at,
            seq,
            undo: true,
        } => (at, ChannelAct::Unpin { seq }, None),
        C::Rename { at, new_name } => (at, ChannelAct::Rename { name: new_name }, None),
        C::Archive { at, undo: false } => (at, ChannelAct::Archive, None),
        C::Archive { at, undo: true } => (at, ChannelAct::Unarchive, None),
        C::Invite {
            at,
            revoke: Some(token),
            ..
        } => (at, ChannelAct::RevokeInvite { token }, None),
        C::Set { at, setting } => {
            let setting = setting.into();
            (at, ChannelAct::Set { setting }, None)
        }
    };
    act(env, &at, what, reason).await
}

/// Asks the server to do `what` in the channel, as the person at the terminal, and says what
/// was done: `#ops: kicked bob (looping)`.
async fn act(env: &Env, at: &At, what: ChannelAct, reason: Option<String>) -> Result<()> {
    let client = env.as_person(at.server.as_deref()).await?;
    let frame = ClientFrame::Moderate {
        id: 0,
        channel: at.channel.clone(),
        act: what.clone(),
        reason: reason.clone(),
    };
    expect_done(&client.link, frame).await?;
    let why = reason
        .map(|r| format!(" ({})", printable(&r)))
        .unwrap_or_default();
    println!("#{}: {}{why}", at.channel, printable(&what.to_string()));
    Ok(())
}

/// Sends a request whose only answer is `Done`.
pub(super) async fn expect_done(link: &LinkHandle, frame: ClientFrame) -> Result<()> {
    match link.request(frame).await? {
        ServerFrame::Done { .. } => Ok(()),
        other => bail!("unexpected answer from the server: {}", other.kind()),
    }
}

/// `channel topic CHANNEL`: prints the topic (on stderr that there is none).
async fn show_topic(env: &Env, at: &At) -> Result<()> {
    let details = describe(env, at).await?;
    if details.topic.is_empty() {
        eprintln!("#{} has no topic", details.name);
    } else {
        println!("{}", printable(&details.topic));
    }
    Ok(())
}

/// `channel delete CHANNEL [--yes]`: without `--yes`, the person types the name again.
async fn delete(env: &Env, at: &At, yes: bool) -> Result<()> {
    if !yes {
        confirm_delete(at.channel.clone()).await?;
    }
    act(env, at, ChannelAct::Delete, None).await
}

/// Asks on the terminal for the channel's name; anything else, or no terminal, refuses.
async fn confirm_delete(channel: Name) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not deleting #{channel}: stdin is not a terminal to confirm on; add --yes");
    }
    eprint!(
        "deleting #{channel} removes it and all its messages for everyone; type its name to confirm: "
    );
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    if answer.trim().trim_start_matches('#') != channel.as_str() {
        bail!("the name did not match; #{channel} was not deleted");
    }
    Ok(())
}

/// `channel invite CHANNEL [--uses N] [--ttl DURATION]`: prints the token and how to use it.
async fn invite(env: &Env, at: &At, uses: Option<u32>, ttl: Option<Duration>) -> Result<()> {
    let client = env.as_person(at.server.as_deref()).await?;
    let frame = ClientFrame::CreateInvite {
        id: 0,
        channel: at.channel.clone(),
        uses,
        ttl_ms: millis(ttl),
    };
    let ServerFrame::ChannelInvite {
        channel,
        token,
        uses,
        expires,
        ..
    } = client.link.request(frame).await?
    else {
        bail!("unexpected answer from the server to an invite");
    };
    let now = chrono::Utc::now().timestamp_millis();
    let times = if uses == 1 { "once" } else { "times" };
    let uses = if uses == 1 {
        String::new()
    } else {
        format!("{uses} ")
    };
    println!("{token}");
    println!(
        "Valid {}, {uses}{times}: `conclave join {channel} --invite {token} --server {}`",
        remaining_in_words(expires, now),
        client.server
    );
    Ok(())
}

/// `channel invite CHANNEL --list`: the open tokens, with who made them and what is left.
async fn invites(env: &Env, at: &At) -> Result<()> {
    let client = env.as_person(at.server.as_deref()).await?;
    let frame = ClientFrame::ListInvites {
        id: 0,
        channel: at.channel.clone(),
    };
    let ServerFrame::Invites {
        channel, invites, ..
    } = client.link.request(frame).await?
    else {
        bail!("unexpected answer from the server to a list of invites");
    };
    if invites.is_empty() {
        println!("#{channel} has no open invites");
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    for invite in invites {
        println!(
            "{}  by {:<12} {} use(s) left, valid {}",
            invite.token,
            invite.by.as_str(),
            invite.uses_left,
            remaining_in_words(invite.expires, now)
        );
    }
    Ok(())
}

/// The channel in full (any session that may read it may ask).
async fn describe(env: &Env, at: &At) -> Result<ChannelDetails> {
    let channel = at.channel.clone();
    let client = env.one_shot(at.server.as_deref()).await?;
    match client
        .link
        .request(ClientFrame::DescribeChannel { id: 0, channel })
        .await?
    {
        ServerFrame::ChannelDetails { details, .. } => Ok(details),
        other => bail!("unexpected answer from the server: {}", other.kind()),
    }
}

/// `channel info CHANNEL`.
async fn info(env: &Env, at: &At) -> Result<()> {
    let d = describe(env, at).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let line = |label: &str, value: &dyn std::fmt::Display| println!("{label:<13}{value}");
    line("channel", &format!("#{} ({})", d.name, d.visibility));
    let topic = if d.topic.is_empty() {
        "-".to_owned()
    } else {
        printable(&d.topic)
    };
    line("topic", &topic);
    let owner = d.owner.as_ref().map_or("-".into(), Name::to_string);
    line("owner", &owner);
    let moderators: Vec<String> = d.moderators.iter().map(Name::to_string).collect();
    line("moderators", &list_or_dash(&moderators));
    let mut you = d.role.map_or("not a member".into(), |r| r.to_string());
    if let Some(until) = d.muted_until.filter(|&u| u > now) {
        you.push_str(&format!(", muted {}", remaining_in_words(until, now)));
    }
    line("you", &you);
    line(
        "archived",
        &if d.archived { "yes, read-only" } else { "no" },
    );
    let turns = match d.agent_turns_left() {
        None => "unlimited".to_owned(),
        Some(left) => format!(
            "{} in a row; {} since a person spoke, {left} left",
            d.agent_turns, d.agent_run
        ),
    };
    line("agent turns", &turns);
    line("reply mode", &d.reply_mode);
    let slow = match d.slow_seconds {
        0 => "off".to_owned(),
        s => format!(
            "one message per agent every {}",
            duration_in_words(u64::from(s) * 1000)
        ),
    };
    line("slow mode", &slow);
    line("floor", &d.floor.as_deref().unwrap_or("-"));
    line("messages", &d.last_seq);
    for (i, pin) in d.pins.iter().enumerate() {
        let label = if i == 0 { "pinned" } else { "" };
        let first = pin.text.lines().next().unwrap_or_default();
        line(
            label,
            &format!("#{}:{} {}: {}", d.name, pin.seq, pin.from, printable(first)),
        );
    }
    Ok(())
}

/// `a, b, c`, or `-` for none.
fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}
