//! The task behind every `LinkHandle`: it owns the connection, backs off between attempts,
//! does the handshake, re-joins and fills gaps after each reconnect, and resends what is safe
//! to repeat. It knows no transport: `spawn_with` is handed the connect step.

use super::*;

mod addresses;
mod backoff;
mod delivery;
mod handshake;

use crate::net::servers::server_urls;
use addresses::dial;
pub use backoff::Backoff;
use handshake::Welcome;

/// What an unanswered request is for.
enum Purpose {
    /// A caller waits for the answer.
    Caller(Reply),
    /// A join, the caller's first one or the link's own after a reconnect.
    Join {
        channel: Name,
        caller: Option<Reply>,
    },
    /// A page of history the link fetches to fill a gap.
    GapFill { channel: Name },
}

struct Pending {
    frame: ClientFrame,
    purpose: Purpose,
    /// Handed to a connection (which may have died before the answer came).
    sent: bool,
}

/// Per joined channel: where delivery stands.
struct ChannelState {
    resume: Resume,
    /// The last sequence number delivered to the caller; `None` until the first `Joined`.
    delivered: Option<u64>,
    /// Live messages that arrived ahead of a gap being filled.
    ahead: BTreeMap<u64, ChatMessage>,
    /// A history fetch for this channel is in flight.
    filling: bool,
    /// The server answered a join at least once (so a reconnect must re-join it).
    joined: bool,
}

/// Starts a link over any connector (tests hand in channel pairs).
pub fn spawn_with<C, F>(config: LinkConfig, connect: C) -> (LinkHandle, mpsc::Receiver<LinkEvent>)
where
    C: Fn(String) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Conn, ConnectError>> + Send + 'static,
{
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let closed = Arc::new(Mutex::new(None));
    let handle = LinkHandle {
        commands: commands_tx,
        closed: closed.clone(),
    };
    let on_conflict = if config.handle_defaulted {
        OnConflict::Suffix
    } else {
        OnConflict::Refuse
    };
    let task = LinkTask {
        handle: config.handle.clone(),
        path: None,
        urls: server_urls(&config.url),
        next_url: 0,
        served_stably: false,
        server_id: None,
        on_conflict,
        instance: new_client_id(),
        config,
        commands,
        events,
        closed,
        next_id: 1,
        pending: BTreeMap::new(),
        channels: HashMap::new(),
        backoff: Backoff::default(),
    };
    tokio::spawn(task.run(connect));
    (handle, events_rx)
}

/// How one connection ended.
enum Ended {
    /// Every handle is gone: stop.
    HandlesDropped,
    /// Try again (after a backoff) unless the link is one-shot.
    Lost(String),
    /// Do not try again.
    Fatal(String),
}

struct LinkTask {
    config: LinkConfig,
    /// The handle to ask for: the configured one, then the one the server granted.
    handle: Name,
    /// The path the server granted, once it has.
    path: Option<SessionPath>,
    /// The server's addresses (`config.url` read once): one, or instances tried in turn.
    urls: Vec<String>,
    /// Which of `urls` to try first (the one that answered last).
    next_url: usize,
    /// The last connection stayed up long enough to count as working (see `Backoff`).
    served_stably: bool,
    /// The id of the server first reached: with several addresses, every one must reach the
    /// same server (instances of one deployment), or resuming by seq would be wrong.
    server_id: Option<String>,
    on_conflict: OnConflict,
    /// Random id of this link, sent in every `Hello`.
    instance: String,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<LinkEvent>,
    closed: Arc<Mutex<Option<String>>>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    channels: HashMap<Name, ChannelState>,
    backoff: Backoff,
}

impl LinkTask {
    async fn run<C, F>(mut self, connect: C)
    where
        C: Fn(String) -> F + Sync,
        F: Future<Output = Result<Conn, ConnectError>>,
    {
        let urls = self.urls.clone();
        let reason = loop {
            let dialing = dial(&connect, &urls, self.next_url);
            let (attempt, answered) = tokio::select! {
                result = dialing => result,
                () = self.queue_commands_until_closed() => return,
            };
            self.next_url = answered;
            let ended = match attempt {
                Err(e) if e.fatal => Ended::Fatal(e.message),
                Err(e) => Ended::Lost(e.message),
                Ok(conn) => {
                    let ended = self.serve(conn).await;
                    // An instance that answers and then fails (a broken database, a handshake
                    // that never ends) must not stay first in line: the next one goes first.
                    if matches!(ended, Ended::Lost(_)) && !self.served_stably {
                        self.next_url = (self.next_url + 1) % urls.len().max(1);
                    }
                    ended
                }
            };
            let reason = match ended {
                Ended::HandlesDropped => return,
                Ended::Fatal(reason) => break reason,
                Ended::Lost(reason) if !self.config.persistent => break reason,
                Ended::Lost(reason) => reason,
            };
            self.forget_connection_state();
            let retry_in = self.backoff.next_delay();
            tracing::debug!(%reason, ?retry_in, "link down");
            let _ = self
                .events
                .send(LinkEvent::Disconnected { reason, retry_in })
                .await;
            let sleep = tokio::time::sleep(retry_in);
            tokio::select! {
                () = sleep => {}
                () = self.queue_commands_until_closed() => return,
            }
        };
        self.close(reason).await;
    }

    /// Accepts commands into the pending queue while there is no connection. Returns only
    /// when every handle is dropped; callers race it against the thing they wait for.
    async fn queue_commands_until_closed(&mut self) {
        loop {
            if self.pending.len() >= MAX_QUEUED_REQUESTS {
                // Stop draining: callers now wait on the bounded command channel.
                std::future::pending::<()>().await;
            }
            match self.commands.recv().await {
                Some(command) => {
                    self.accept(command);
                }
                None => return,
            }
        }
    }

    /// Gives up: fails every waiting caller with `reason` and tells the event stream.
    async fn close(mut self, reason: String) {
        if let Ok(mut closed) = self.closed.lock() {
            *closed = Some(reason.clone());
        }
        for (_, pending) in std::mem::take(&mut self.pending) {
            pending.fail(LinkError::Closed(reason.clone()));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            let (Command::Request { reply, .. }
            | Command::Join { reply, .. }
            | Command::Leave { reply, .. }) = command;
            let _ = reply.send(Err(LinkError::Closed(reason.clone())));
        }
        let _ = self.events.send(LinkEvent::Closed { reason }).await;
    }

    /// Registers a command as pending and returns its id (the frame goes out when connected).
    fn accept(&mut self, command: Command) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let pending = match command {
            Command::Request { frame, reply } => Pending {
                frame: frame.with_id(id),
                purpose: Purpose::Caller(reply),
                sent: false,
            },
            Command::Leave { channel, reply } => {
                // Stop delivering now, and never re-join it after a reconnect.
                self.channels.remove(&channel);
                self.pending.retain(|_, p| match &p.purpose {
                    Purpose::Join {
                        channel: c,
                        caller: None,
                    }
                    | Purpose::GapFill { channel: c } => c != &channel,
                    _ => true,
                });
                Pending {
                    frame: ClientFrame::Leave { id, channel },
                    purpose: Purpose::Caller(reply),
                    sent: false,
                }
            }
            Command::Join {
                channel,
                resume,
                invite,
                reply,
            } => {
                self.channels
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelState {
                        resume,
                        delivered: None,
                        ahead: BTreeMap::new(),
                        filling: false,
                        joined: false,
                    });
                Pending {
                    frame: ClientFrame::Join {
                        id,
                        channel: channel.clone(),
                        invite,
                    },
                    purpose: Purpose::Join {
                        channel,
                        caller: Some(reply),
                    },
                    sent: false,
                }
            }
        };
        self.pending.insert(id, pending);
        id
    }

    fn queue_internal(&mut self, frame: ClientFrame, purpose: Purpose) -> ClientFrame {
        let id = self.next_id;
        self.next_id += 1;
        let frame = frame.with_id(id);
        self.pending.insert(
            id,
            Pending {
                frame: frame.clone(),
                purpose,
                sent: false,
            },
        );
        frame
    }

    /// Drops what only made sense on the last connection: gap buffers and the link's own
    /// history fetches and re-joins (they are redone after the next re-join). Requests that
    /// reached the server unanswered are resent only when repeating them is harmless; the
    /// others fail, since they may or may not have been done.
    fn forget_connection_state(&mut self) {
        for state in self.channels.values_mut() {
            state.ahead.clear();
            state.filling = false;
        }
        self.pending.retain(|_, p| {
            !matches!(
                p.purpose,
                Purpose::GapFill { .. } | Purpose::Join { caller: None, .. }
            )
        });
        let uncertain: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent && !safe_to_repeat(&p.frame))
            .map(|(id, _)| *id)
            .collect();
        for id in uncertain {
            if let Some(pending) = self.pending.remove(&id) {
                pending.fail(LinkError::Closed(
                    "the connection dropped before the server answered; it may or may not have been done"
                        .into(),
                ));
            }
        }
        for pending in self.pending.values_mut() {
            pending.sent = false;
        }
    }

    /// Handshake, catch-up, then pump frames until the connection ends.
    async fn serve(&mut self, mut conn: Conn) -> Ended {
        self.served_stably = false;
        let welcome = match tokio::time::timeout(HANDSHAKE_TIMEOUT * 2, self.handshake(&mut conn))
            .await
        {
            Ok(Ok(welcome)) => welcome,
            Ok(Err(ended)) => return ended,
            Err(_) => return Ended::Lost("the server did not finish the handshake in time".into()),
        };
        let up_since = Instant::now();
        let Welcome {
            path,
            server_id,
            admin,
        } = welcome;
        // With several addresses, later connections must reach this same server.
        self.server_id.get_or_insert(server_id.clone());
        // Reconnects ask for the path granted now; the instance id lets the server hand it
        // back even before it notices the old connection is gone.
        self.handle = path.session.clone();
        self.path = Some(path.clone());
        if !matches!(self.config.login, Login::Key) {
            self.config.login = Login::Key;
        }
        let _ = self
            .events
            .send(LinkEvent::Connected {
                path,
                server_id,
                admin,
            })
            .await;

        // Queue a re-join of every channel joined before, then (re)send everything pending in
        // id order: older unanswered requests first, the re-joins after them.
        let mut rejoin: Vec<Name> = self
            .channels
            .iter()
            .filter(|(_, s)| s.joined)
            .map(|(name, _)| name.clone())
            .collect();
        rejoin.sort();
        for channel in rejoin {
            let frame = ClientFrame::Join {
                id: 0,
                channel: channel.clone(),
                invite: None,
            };
            self.queue_internal(
                frame,
                Purpose::Join {
                    channel,
                    caller: None,
                },
            );
        }
        let mut outbox: VecDeque<ClientFrame> =
            self.pending.values().map(|p| p.frame.clone()).collect();

        let ended = loop {
            tokio::select! {
                permit = conn.tx.reserve(), if !outbox.is_empty() => match (permit, outbox.pop_front()) {
                    (Ok(permit), Some(frame)) => {
                        if let Some(p) = frame.request_id().and_then(|id| self.pending.get_mut(&id)) {
                            p.sent = true;
                        }
                        permit.send(frame);
                    }
                    _ => break Ended::Lost("connection closed".into()),
                },
                command = self.commands.recv(), if outbox.is_empty() && self.pending.len() < MAX_QUEUED_REQUESTS => match command {
                    Some(command) => {
                        let id = self.accept(command);
                        if let Some(p) = self.pending.get(&id) {
                            outbox.push_back(p.frame.clone());
                        }
                    }
                    None => break Ended::HandlesDropped,
                },
                inbound = conn.rx.recv() => match inbound {
                    Some(frame) => {
                        if let Err(ended) = self.on_frame(frame, &mut outbox).await {
                            break ended;
                        }
                    }
                    None => break Ended::Lost("connection closed".into()),
                },
            }
        };
        if up_since.elapsed() >= Backoff::STABLE_AFTER {
            self.backoff.reset();
            self.served_stably = true;
        }
        ended
    }

    /// Handles one frame from the server. Frames to send in answer go to `outbox`.
    async fn on_frame(
        &mut self,
        frame: ServerFrame,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        if let Some(id) = frame.reply_to() {
            let Some(pending) = self.pending.remove(&id) else {
                tracing::debug!(id, kind = frame.kind(), "answer to no pending request");
                return Ok(());
            };
            return self.on_reply(pending.purpose, frame, outbox).await;
        }
        match frame {
            ServerFrame::Message(message) => self.on_message(message, outbox).await,
            ServerFrame::Whisper(w) => self.emit(LinkEvent::Whisper(w)).await,
            ServerFrame::Presence(p) => self.emit(LinkEvent::Presence(p)).await,
            ServerFrame::Relay {
                from,
                from_kind,
                body,
            } => {
                self.emit(LinkEvent::Relay {
                    from,
                    from_kind,
                    body,
                })
                .await
            }
            ServerFrame::Moderation(event) => self.on_moderation(event).await,
            ServerFrame::Opened { channel } => self.emit(LinkEvent::Opened(channel)).await,
            ServerFrame::Closing { reason, message } => match reason {
                CloseReason::Revoked | CloseReason::Replaced | CloseReason::Banned => {
                    Err(Ended::Fatal(message))
                }
                CloseReason::Shutdown | CloseReason::TooSlow | CloseReason::Protocol => {
                    Err(Ended::Lost(message))
                }
            },
            ServerFrame::Error { code, message, .. } => {
                tracing::warn!(?code, %message, "server reported a connection error");
                Ok(())
            }
            other => {
                tracing::debug!(kind = other.kind(), "ignored frame");
                Ok(())
            }
        }
    }

    /// Keeps the joined channels true to a moderation act before passing it on: a channel
    /// this session was removed from is not re-joined, a renamed one is re-joined by its new
    /// name.
    async fn on_moderation(&mut self, event: ModerationEvent) -> Result<(), Ended> {
        if self.path.as_ref().is_some_and(|me| event.removes(me)) {
            self.channels.remove(&event.channel);
        } else if let ChannelAct::Rename { name } = &event.act {
            if let Some(state) = self.channels.remove(&event.channel) {
                self.channels.insert(name.clone(), state);
            }
        }
        self.emit(LinkEvent::Moderation(event)).await
    }

    async fn on_reply(
        &mut self,
        purpose: Purpose,
        frame: ServerFrame,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        let result = match frame {
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => Err(ProtocolError {
                code,
                message,
                retry_after_ms,
            }),
            frame => Ok(frame),
        };
        match purpose {
            Purpose::Caller(reply) => {
                let _ = reply.send(result.map_err(LinkError::Server));
                Ok(())
            }
            Purpose::Join { channel, caller } => {
                match &result {
                    Ok(ServerFrame::Joined { channel: info, .. }) => {
                        if let Some(state) = self.channels.get_mut(&channel) {
                            state.joined = true;
                            let delivered = *state.delivered.get_or_insert(match state.resume {
                                Resume::Live => info.last_seq,
                                Resume::After(seq) => seq.min(info.last_seq),
                                Resume::Last(n) => info.last_seq.saturating_sub(n),
                            });
                            if delivered < info.last_seq && !state.filling {
                                self.fill_gap(&channel, outbox);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.channels.remove(&channel);
                        if caller.is_none() {
                            let event = LinkEvent::ChannelLost {
                                channel,
                                reason: e.message.clone(),
                            };
                            self.emit(event).await?;
                        }
                    }
                }
                if let Some(reply) = caller {
                    let _ = reply.send(result.map_err(LinkError::Server));
                }
                Ok(())
            }
            Purpose::GapFill { channel } => {
                let (messages, more) = match result {
                    Ok(ServerFrame::History { messages, more, .. }) => (messages, more),
                    Ok(other) => {
                        tracing::warn!(kind = other.kind(), "unexpected answer to a history fetch");
                        (Vec::new(), false)
                    }
                    Err(e) => {
                        tracing::warn!(%channel, %e, "history fetch failed");
                        (Vec::new(), false)
                    }
                };
                for message in messages {
                    self.deliver_in_order(message).await?;
                }
                let Some(state) = self.channels.get_mut(&channel) else {
                    return Ok(());
                };
                state.filling = false;
                if more {
                    self.fill_gap(&channel, outbox);
                    return Ok(());
                }
                // History has nothing more before the buffered live messages: anything still
                // missing was purged by retention, so deliver what was buffered.
                let ahead = std::mem::take(&mut state.ahead);
                for (_, message) in ahead {
                    self.deliver_in_order(message).await?;
                }
                Ok(())
            }
        }
    }

    /// Hands an event to the caller. A caller that dropped its event stream still gets answers
    /// to its requests, so a closed stream is not an error.
    async fn emit(&self, event: LinkEvent) -> Result<(), Ended> {
        let _ = self.events.send(event).await;
        Ok(())
    }
}

impl Pending {
    fn fail(self, error: LinkError) {
        match self.purpose {
            Purpose::Caller(reply)
            | Purpose::Join {
                caller: Some(reply),
                ..
            } => {
                let _ = reply.send(Err(error));
            }
            Purpose::Join { caller: None, .. } | Purpose::GapFill { .. } => {}
        }
    }
}

/// Whether a request may be sent again after its connection died unanswered: reads, joins,
/// read positions, and sends (their client id makes the server store them once).
fn safe_to_repeat(frame: &ClientFrame) -> bool {
    matches!(
        frame,
        ClientFrame::Send { .. }
            | ClientFrame::Join { .. }
            | ClientFrame::ListChannels { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Who { .. }
            | ClientFrame::MarkRead { .. }
            | ClientFrame::ListMachines { .. }
    )
}
