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

use super::{Connect, Env, message_text};

/// How long a send keeps trying after a connection was lost with the message in flight.
const SEND_DEADLINE: Duration = Duration::from_secs(20);

/// Pause between tries, so a server that is restarting gets a moment.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What one `send`, `edit`, `delete` or `react` posts.
pub struct Posting {
    pub channel: Name,
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
        channel: Name::channel(channel)?,
        text: message_text(text)?,
        reply_to,
        change: None,
    };
    post(env, posting, server, handle).await
}

/// Posts a message or a change, once, retrying with its client id across lost connections.
pub async fn post(
    env: &Env,
    posting: Posting,
    server: Option<&str>,
    handle: Option<&str>,
) -> Result<()> {
    let Posting {
        channel,
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
