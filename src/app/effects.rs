//! Carrying out `Cmd`s through a server's link: each outcome comes back as a `Reply` for
//! `update`, tagged with the server. Typed messages and whispers go through one sender task
//! per server, in the order typed.

use tokio::sync::mpsc;

use crate::net::link::{LinkError, LinkHandle, Resume};
use crate::net::protocol::{ClientFrame, RelayBody, SearchRequest, ServerFrame};

use super::model::PAGE;

/// Hits one `/search` shows.
const SEARCH_PAGE: u32 = 20;
use super::update::{AuditPage, Cmd, Listing, Reply};

/// Starts the task that sends typed messages one after another, and returns its queue.
/// Unbounded on purpose: it holds only what the person typed (each one already on screen,
/// marked pending), and a typed message must never be dropped for want of room.
pub fn spawn_sender(link: LinkHandle, replies: Replies) -> mpsc::UnboundedSender<Cmd> {
    let (ordered, mut to_send) = mpsc::unbounded_channel::<Cmd>();
    tokio::spawn(async move {
        while let Some(cmd) = to_send.recv().await {
            carry_out(cmd, &link, &replies).await;
        }
    });
    ordered
}

/// The failure of a send that never reached the link.
pub fn not_sent(cmd: Cmd, error: &str) -> Option<Reply> {
    let (Cmd::Send { id, .. } | Cmd::Whisper { id, .. }) = cmd else {
        return None;
    };
    Some(Reply::NotSent {
        id,
        error: error.to_owned(),
    })
}

/// Runs one command; its outcome comes back as a `Reply`.
pub async fn carry_out(cmd: Cmd, link: &LinkHandle, replies: &Replies) {
    let failed = |context: String, e: LinkError| Reply::Failed {
        context,
        error: e.to_string(),
    };
    let reply = match cmd {
        Cmd::ListChannels(why) => match link.list_channels().await {
            Ok(list) => Some(Reply::Channels { list, why }),
            Err(e) if why == Listing::Refresh => {
                tracing::debug!(%e, "channel names not refreshed");
                None
            }
            Err(e) => Some(failed("cannot list channels".into(), e)),
        },
        Cmd::Search { query, before } => {
            let older = before.is_some();
            let request = SearchRequest {
                query: query.clone(),
                limit: SEARCH_PAGE,
                before,
                ..SearchRequest::default()
            };
            match link.search(request).await {
                Ok((hits, next)) => Some(Reply::Found {
                    query,
                    hits,
                    next,
                    older,
                }),
                Err(e) => Some(failed(format!("cannot search for {query}"), e)),
            }
        }
        Cmd::FindUser { user, text } => match link.who(None).await {
            Ok(report) => Some(Reply::UserSessions {
                user,
                sessions: report.sessions,
                text,
            }),
            Err(e) => Some(failed(format!("cannot find {user}"), e)),
        },
        Cmd::Join { channel, invite } => match link.join_with(&channel, Resume::Live, invite).await
        {
            Ok(receipt) => Some(Reply::Joined(receipt)),
            Err(e) => Some(failed(format!("cannot join #{channel}"), e)),
        },
        Cmd::Leave(channel) => match link.leave(&channel).await {
            Ok(_) => Some(Reply::Left(channel)),
            Err(e) => Some(failed(format!("cannot leave #{channel}"), e)),
        },
        Cmd::Create(channel, visibility) => match link.create_channel(&channel, visibility).await {
            Ok(info) => Some(Reply::Created(info)),
            Err(e) => Some(failed(format!("cannot create #{channel}"), e)),
        },
        Cmd::Send {
            channel,
            text,
            id,
            reply_to,
        } => match link.reply(&channel, &text, reply_to).await {
            Ok(receipt) => Some(Reply::Sent {
                id,
                seq: receipt.seq,
                ts: receipt.ts,
            }),
            Err(e) => Some(Reply::NotSent {
                id,
                error: e.to_string(),
            }),
        },
        Cmd::Whisper { to, text, id } => match link.whisper(&to, &text).await {
            Ok(()) => Some(Reply::Whispered { to, id }),
            Err(e) => Some(Reply::NotSent {
                id,
                error: e.to_string(),
            }),
        },
        Cmd::History {
            channel,
            before,
            after,
        } => match link.history(&channel, after, before, PAGE).await {
            Ok(page) => Some(Reply::History {
                channel,
                page,
                older: before.is_some(),
            }),
            Err(e) => Some(failed(format!("cannot read #{channel}"), e)),
        },
        Cmd::Thread {
            channel,
            root,
            before,
        } => match link.thread(&channel, root, before, PAGE).await {
            Ok(page) => Some(Reply::Thread {
                channel,
                root,
                page,
            }),
            Err(e) => Some(failed(
                format!("cannot read the thread #{channel}:{root}"),
                e,
            )),
        },
        Cmd::Who { channel, show } => match link.who(channel.as_ref()).await {
            Ok(report) => Some(Reply::Who {
                channel,
                report,
                show,
            }),
            Err(e) => Some(failed("who failed".into(), e)),
        },
        Cmd::Describe(channel) => {
            let frame = ClientFrame::DescribeChannel {
                id: 0,
                channel: channel.clone(),
            };
            match link.request(frame).await {
                Ok(ServerFrame::ChannelDetails { details, .. }) => {
                    Some(Reply::Details(Box::new(details)))
                }
                Ok(other) => Some(failed(
                    format!("cannot read #{channel}"),
                    LinkError::Unexpected(other.kind()),
                )),
                Err(e) => Some(failed(format!("cannot read #{channel}"), e)),
            }
        }
        Cmd::Change {
            channel,
            change,
            text,
        } => {
            let what = change.name();
            match link.change(&channel, change, &text).await {
                Ok(_) => None,
                Err(e) => Some(failed(format!("cannot {what} in #{channel}"), e)),
            }
        }
        Cmd::Member { channel, user, add } => {
            let done = if add {
                link.add_member(&channel, &user).await
            } else {
                link.remove_member(&channel, &user).await
            };
            // On success the channel's member list is fetched again and said in the room.
            let who = match done {
                Ok(()) => link.who(Some(&channel)).await,
                Err(e) => Err(e),
            };
            match who {
                Ok(report) => Some(Reply::Who {
                    channel: Some(channel),
                    report,
                    show: true,
                }),
                Err(e) => Some(failed(
                    format!("cannot change the members of #{channel}"),
                    e,
                )),
            }
        }
        Cmd::MarkRead { channel, seq } => {
            if let Err(e) = link.mark_read(&channel, seq).await {
                tracing::debug!(%e, %channel, "read position not saved");
            }
            None
        }
        Cmd::Relay { to, audience, body } => {
            // Asking for agents' levels when none is online is not news; a lost verdict is.
            let quiet = matches!(body, RelayBody::AutonomyQuery);
            match link.relay(to, audience, body).await {
                Err(e) if !quiet => Some(failed("not delivered".into(), e)),
                _ => None,
            }
        }
        Cmd::Moderate {
            channel,
            act,
            reason,
        } => {
            let context = format!("/{} in #{channel}", act.name());
            let frame = ClientFrame::Moderate {
                id: 0,
                channel,
                act,
                reason,
            };
            // Done: the channel's `Moderation` event says what happened, to everyone at once.
            match link.request(frame).await {
                Ok(ServerFrame::Done { .. }) => None,
                Ok(other) => Some(failed(context, LinkError::Unexpected(other.kind()))),
                Err(e) => Some(failed(context, e)),
            }
        }
        Cmd::Invite {
            channel,
            uses,
            ttl_ms,
        } => {
            let frame = ClientFrame::CreateInvite {
                id: 0,
                channel: channel.clone(),
                uses,
                ttl_ms,
            };
            let context = format!("cannot make an invite to #{channel}");
            match link.request(frame).await {
                Ok(ServerFrame::ChannelInvite {
                    token,
                    uses,
                    expires,
                    ..
                }) => Some(Reply::Invite {
                    channel,
                    token,
                    uses,
                    expires,
                }),
                Ok(other) => Some(failed(context, LinkError::Unexpected(other.kind()))),
                Err(e) => Some(failed(context, e)),
            }
        }
        Cmd::Audit { channel, before } => {
            let frame = ClientFrame::Audit {
                id: 0,
                channel: Some(channel.clone()),
                before,
                limit: PAGE,
            };
            let page = match link.request(frame).await {
                Ok(ServerFrame::Audit { entries, more, .. }) => Ok(AuditPage { entries, more }),
                Ok(other) => Err(LinkError::Unexpected(other.kind()).to_string()),
                Err(e) => Err(e.to_string()),
            };
            Some(Reply::Audit {
                channel,
                older: before.is_some(),
                page,
            })
        }
        Cmd::Bell | Cmd::MouseCapture(_) | Cmd::Register(_) => None,
    };
    if let Some(reply) = reply {
        replies.send(reply).await;
    }
}

/// Where the replies of one server's commands go, tagged with that server.
#[derive(Debug, Clone)]
pub struct Replies {
    server: usize,
    tx: mpsc::Sender<(usize, Reply)>,
}

impl Replies {
    pub fn new(server: usize, tx: mpsc::Sender<(usize, Reply)>) -> Self {
        Self { server, tx }
    }

    pub async fn send(&self, reply: Reply) {
        let _ = self.tx.send((self.server, reply)).await;
    }

    pub fn try_send(&self, reply: Reply) {
        let _ = self.tx.try_send((self.server, reply));
    }
}
