//! `conclave edit`, `delete` and `react`: changes to an earlier message, posted like a send
//! (once, whatever the connection does) and printed as the channel and the event's seq.

use color_eyre::eyre::Result;

use crate::net::protocol::{Change, check_reaction};

use super::servers::on_server;
use super::{Env, message_text, send};

/// `conclave edit CHANNEL SEQ TEXT`
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The channel of the message (CHANNEL@ALIAS on another of your servers)
    channel: String,
    /// The message to edit (its seq, as `tail` shows it); only your own
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    seq: u64,
    /// Its new text; `-` reads it from stdin
    text: String,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT [default: the default server]
    #[arg(long)]
    server: Option<String>,
}

/// `conclave delete CHANNEL SEQ`
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The channel of the message (CHANNEL@ALIAS on another of your servers)
    channel: String,
    /// The message to delete (its seq); your own, or any if you moderate the channel
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    seq: u64,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT [default: the default server]
    #[arg(long)]
    server: Option<String>,
}

/// `conclave react CHANNEL SEQ REACTION [--remove]`
#[derive(Debug, clap::Args)]
pub struct ReactArgs {
    /// The channel of the message (CHANNEL@ALIAS on another of your servers)
    channel: String,
    /// The message to react to (its seq)
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    seq: u64,
    /// An emoji or a short word (`seen`, `working-on-it`)
    reaction: String,
    /// Take your reaction back
    #[arg(long)]
    remove: bool,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT [default: the default server]
    #[arg(long)]
    server: Option<String>,
}

pub async fn edit(env: &Env, args: EditArgs) -> Result<()> {
    let text = message_text(&args.text)?;
    let change = Change::Edit { target: args.seq };
    post(env, &args.channel, args.server.as_deref(), change, text).await
}

pub async fn delete(env: &Env, args: DeleteArgs) -> Result<()> {
    let change = Change::Delete { target: args.seq };
    post(
        env,
        &args.channel,
        args.server.as_deref(),
        change,
        String::new(),
    )
    .await
}

pub async fn react(env: &Env, args: ReactArgs) -> Result<()> {
    check_reaction(&args.reaction)?;
    let change = Change::React {
        target: args.seq,
        removed: args.remove,
    };
    post(
        env,
        &args.channel,
        args.server.as_deref(),
        change,
        args.reaction,
    )
    .await
}

async fn post(
    env: &Env,
    channel: &str,
    server: Option<&str>,
    change: Change,
    text: String,
) -> Result<()> {
    let (channel, server) = on_server(channel, server)?;
    let posting = send::Posting {
        to: send::Conversation::parse(channel)?,
        text,
        reply_to: None,
        change: Some(change),
    };
    send::post(env, posting, server, None).await
}
