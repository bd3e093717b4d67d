//! `conclave send`: post one message and make sure it is stored exactly once. The message gets
//! its client id before the first try; when the connection is lost after it may have gone out,
//! the same id is sent again (on a new connection) until the server acknowledges it or a
//! deadline passes. The server stores a repeated id once, so a retry never posts twice, and a
//! failure is only reported as "may have been posted" when it truly is unknown.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail};

use crate::net::client::Setup;
use crate::net::link::{LinkError, new_client_id};
use crate::net::names::Name;
use crate::net::protocol::Change;

use super::servers::on_server;
use super::{Connect, Env, message_text};

/// How long a send keeps trying after a connection was lost with the message in flight.
const SEND_DEADLINE: Duration = Duration::from_secs(20);

/// Pause between tries, so a server that is restarting gets a moment.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Where a verb posts or reads: a channel, or (`@USER`) the direct conversation with a user,
/// whose channel's name needs this user's own name, known once connected.
#[derive(Debug, Clone)]
pub enum Conversation {
    Channel(Name),
    With(Name),
}

impl Conversation {
    /// `general`, `#general`, or `@bob`.
    pub fn parse(input: &str) -> Result<Self> {
        Ok(match input.strip_prefix('@') {
            Some(user) => Self::With(Name::user(user)?),
            None => Self::Channel(Name::channel(input)?),
        })
    }

    /// The channel, for `me`.
    pub fn channel(&self, me: &Name) -> Result<Name> {
        match self {
            Self::Channel(name) => Ok(name.clone()),
            Self::With(user) if user == me => {
                bail!("@{user} is you: a direct conversation is with someone else")
            }
            Self::With(user) => Ok(Name::direct(me, user)),
        }
    }
}

/// What one `send`, `dm`, `edit`, `delete` or `react` posts.
pub struct Posting {
    pub to: Conversation,
    pub text: String,
    pub reply_to: Option<u64>,
    pub change: Option<Change>,
}

pub async fn send(
    env: &Env,
    channel: &str,
    text: &str,
    reply_to: Option<u64>,
    server: Option<&str>,
    handle: Option<&str>,
) -> Result<()> {
    let posting = Posting {
        to: Conversation::parse(channel)?,
        text: message_text(text)?,
        reply_to,
        change: None,
    };
    post(env, posting, server, handle).await
}

/// `conclave dm USER TEXT`: a message in the direct conversation with USER (`bob`, `@bob`,
/// `bob@ALIAS` on another server), which it opens on first use.
pub async fn dm(env: &Env, user: &str, text: &str, server: Option<&str>) -> Result<()> {
    let (user, server) = on_server(user, server)?;
    let posting = Posting {
        to: Conversation::With(Name::user(user.trim_start_matches('@'))?),
        text: message_text(text)?,
        reply_to: None,
        change: None,
    };
    post(env, posting, server, None).await
}

/// Posts a message or a change, once, retrying with its client id across lost connections.
pub async fn post(
    env: &Env,
    posting: Posting,
    server: Option<&str>,
    handle: Option<&str>,
) -> Result<()> {
    let Posting {
        to,
        text,
        reply_to,
        change,
    } = posting;
    let how = || Connect {
        server,
        handle,
        default_handle: "cli",
        persistent: false,
        setup: Setup::Key,
    };
    let client_id = new_client_id();
    // Nothing can have been posted before the first connection: its failure is final.
    let mut client = env.connect(how()).await?;
    let channel = to.channel(&client.path.user)?;
    let deadline = Instant::now() + SEND_DEADLINE;
    loop {
        let link = &client.link;
        let sent = match &change {
            None => link.send_as(&channel, &text, reply_to, &client_id).await,
            Some(change) => {
                link.change_as(&channel, change.clone(), &text, &client_id)
                    .await
            }
        };
        let lost = match sent {
            Ok(receipt) => {
                println!("#{channel} {}", receipt.seq);
                return Ok(());
            }
            Err(LinkError::Closed(reason)) => reason,
            Err(refused) => return Err(refused.into()),
        };
        loop {
            if Instant::now() >= deadline {
                bail!(
                    "the connection was lost ({lost}) and the server could not be reached again within {} s: the message may have been posted; check with `conclave tail {channel}` before sending it again",
                    SEND_DEADLINE.as_secs()
                );
            }
            eprintln!("conclave: {lost}; sending again");
            tokio::time::sleep(RETRY_PAUSE).await;
            match env.connect(how()).await {
                Ok(again) => {
                    client = again;
                    break;
                }
                Err(e) => tracing::debug!(%e, "reconnect for a resend failed"),
            }
        }
    }
}
