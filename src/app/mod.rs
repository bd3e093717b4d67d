//! `conclave tui`: the terminal client for people supervising agents.
//!
//! `run` owns the terminal and the event loop and nothing else: it turns terminal input,
//! link events, command results and a one-second tick into `Msg`s for `update` (the only
//! mutator of the `App` model), carries out the `Cmd`s it returns through the link, and draws
//! `view` after each batch. Drawing never waits on the network or the disk. Reaches the
//! server only through `net::link`.

mod changes;
mod effects;
pub mod help;
pub mod model;
pub mod settings;
pub mod state;
pub mod text;
pub mod update;
pub mod view;
pub mod widgets;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use futures_util::StreamExt;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyEventKind, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::net::client::{self, Opening, Setup};
use crate::net::config::ClientConfig;
use crate::net::human_key;
use crate::net::identity::Identity;
use crate::net::link::{LinkEvent, LinkHandle, LinkRegistry};
use crate::net::protocol::SessionKind;

use self::effects::Replies;
use self::model::{App, ServerView};
use self::settings::Settings;
use self::update::{Cmd, Msg, Reply, update};

/// Link events and replies handled before the next draw, so a burst costs one frame.
const BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct TuiOptions {
    pub config_dir: PathBuf,
    pub server: Option<String>,
}

impl TuiOptions {
    /// How the TUI opens its session on `server`: as a person, reconnecting forever, one
    /// link per server (`registry`).
    fn opening(
        &self,
        server: Option<String>,
        setup: Setup,
        identity: Option<Arc<Identity>>,
        registry: &LinkRegistry,
    ) -> Opening {
        Opening {
            config_dir: self.config_dir.clone(),
            server,
            handle: None,
            default_handle: "tui".into(),
            kind: SessionKind::Human,
            persistent: true,
            setup,
            identity,
            registry: Some(registry.clone()),
        }
    }
}

/// Restores the terminal however the loop ends (the panic hook covers panics).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = execute!(
            out,
            PopKeyboardEnhancementFlags,
            DisableBracketedPaste,
            DisableMouseCapture
        );
        ratatui::restore();
    }
}

/// One server's link as the event loop drives it.
struct ServerLink {
    link: LinkHandle,
    /// Typed messages and whispers, sent in the order typed.
    ordered: mpsc::UnboundedSender<Cmd>,
    replies: Replies,
    /// Forwards the link's events, tagged with the server; stopped with the link.
    forwarding: tokio::task::AbortHandle,
}

impl Drop for ServerLink {
    fn drop(&mut self) {
        self.forwarding.abort();
    }
}

impl ServerLink {
    fn new(
        server: usize,
        link: LinkHandle,
        mut events: mpsc::Receiver<LinkEvent>,
        merged: &mpsc::Sender<(usize, LinkEvent)>,
        replies: &mpsc::Sender<(usize, Reply)>,
    ) -> Self {
        let merged = merged.clone();
        let forwarding = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if merged.send((server, event)).await.is_err() {
                    break;
                }
            }
        });
        let replies = Replies::new(server, replies.clone());
        Self {
            ordered: effects::spawn_sender(link.clone(), replies.clone()),
            link,
            replies,
            forwarding: forwarding.abort_handle(),
        }
    }

    /// Carries out a command meant for the network.
    fn carry_out(&self, cmd: Cmd) {
        match cmd {
            // In the order typed: one task sends them one after another.
            Cmd::Send { .. } | Cmd::Whisper { .. } => {
                if let Err(unsent) = self.ordered.send(cmd) {
                    // Only if the sending task ended: say so on the entry.
                    if let Some(reply) = effects::not_sent(unsent.0, "the sender stopped") {
                        self.replies.try_send(reply);
                    }
                }
            }
            cmd => {
                let (link, replies) = (self.link.clone(), self.replies.clone());
                tokio::spawn(async move { effects::carry_out(cmd, &link, &replies).await });
            }
        }
    }
}

/// Wraps a message about one server.
fn on(server: usize, msg: Msg) -> Msg {
    Msg::On {
        server,
        msg: Box::new(msg),
    }
}

pub async fn run(options: TuiOptions) -> Result<()> {
    let settings = Settings::load(&options.config_dir).map_err(|e| eyre!(e))?;
    // The passphrase and zero set-up come before the terminal is taken, so their questions
    // and errors print plainly.
    let identity = if human_key::exists(&options.config_dir) {
        Some(Arc::new(
            human_key::unlock_at_terminal(&options.config_dir).await?,
        ))
    } else {
        None
    };
    let registry = LinkRegistry::default();
    let first = options.opening(
        options.server.clone(),
        Setup::Auto,
        identity.clone(),
        &registry,
    );
    let mut started = client::start(first).await?;
    let (event_tx, mut link_events) = mpsc::channel::<(usize, LinkEvent)>(1024);
    let (reply_tx, mut replies) = mpsc::channel::<(usize, Reply)>(256);

    // The default server (or `--server`) first; without `--server`, every other configured
    // server beside it.
    let config = ClientConfig::load(&options.config_dir)?;
    let alias_of = |url: &str| {
        config
            .alias_of(url)
            .map_or_else(|| url.to_owned(), String::from)
    };
    let mut views = vec![ServerView::new(
        alias_of(&started.server),
        started.server.clone(),
    )];
    let events = std::mem::replace(&mut started.events, mpsc::channel(1).1);
    let mut links = vec![Some(ServerLink::new(
        0,
        started.link.clone(),
        events,
        &event_tx,
        &reply_tx,
    ))];
    let others: Vec<(String, String)> = match options.server {
        Some(_) => Vec::new(),
        None => config
            .servers()
            .into_iter()
            .filter(|(_, entry)| entry.url != started.server)
            .map(|(alias, entry)| (alias.to_string(), entry.url))
            .collect(),
    };
    for (alias, url) in others {
        let server = views.len();
        let mut view = ServerView::new(alias.clone(), url);
        let opening = options.opening(Some(alias), Setup::Key, identity.clone(), &registry);
        match client::start(opening).await {
            Ok(other) => links.push(Some(ServerLink::new(
                server,
                other.link,
                other.events,
                &event_tx,
                &reply_tx,
            ))),
            Err(e) => {
                view.connection = model::Connection::Offline(e.to_string());
                links.push(None);
            }
        }
        views.push(view);
    }

    let offset = *chrono::Local::now().offset();
    let mut app = App::on_servers(settings, views, offset);
    app.claiming = started.claiming.clone();
    // The channel shown when the TUI last quit comes back into view once joined.
    app.focus_on_join = state::last_room(&options.config_dir);
    if let Some(local) = started.local_server.clone() {
        update(&mut app, Msg::LocalServerStarted(local), now_ms());
    }

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let mut out = std::io::stdout();
    let _ = execute!(out, EnableMouseCapture, EnableBracketedPaste);
    // Lets terminals that can report Shift-Enter do so; others ignore it.
    let _ = execute!(
        out,
        PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
    );

    let mut terminal_events = crossterm::event::EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    terminal.draw(|f| view::view(&app, f))?;

    loop {
        let msg = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(event)) => match terminal_msg(event) {
                    Some(msg) => msg,
                    None => continue,
                },
                Some(Err(e)) => return Err(eyre!("cannot read the terminal: {e}")),
                None => break,
            },
            Some((server, event)) = link_events.recv() => on(server, Msg::Link(event)),
            Some((server, reply)) = replies.recv() => on(server, Msg::Done(reply)),
            _ = tick.tick() => Msg::Tick,
        };
        let ticked = matches!(msg, Msg::Tick);
        let before = countdown(&app);
        let mut cmds: Vec<(usize, Cmd)> = Vec::new();
        let mut next = Some(msg);
        let mut handled = 0;
        while let Some(msg) = next {
            if let Msg::On { server: 0, msg } = &msg
                && let Msg::Link(LinkEvent::Connected {
                    path, server_id, ..
                }) = &**msg
                && let Err(e) = started.remember(path, server_id)
            {
                tracing::warn!(%e, "cannot remember the registration");
            }
            if matches!(msg, Msg::Tick) {
                // Each server's rooms are marked read through that server.
                for server in 0..app.servers.len() {
                    let produced = update(&mut app, on(server, Msg::Tick), now_ms());
                    cmds.extend(produced.into_iter().map(|cmd| (server, cmd)));
                }
            } else {
                let produced = update(&mut app, msg, now_ms());
                cmds.extend(produced.into_iter().map(|cmd| (app.active, cmd)));
            }
            handled += 1;
            next = if handled < BATCH {
                next_pending(&mut link_events, &mut replies)
            } else {
                None
            };
        }
        for (server, cmd) in cmds {
            match cmd {
                // Rung here, between draws, so it never lands inside an escape sequence.
                Cmd::Bell => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
                }
                // The name zero set-up claimed was taken: start again with the one picked.
                Cmd::Register(name) => {
                    let opening = options.opening(
                        options.server.clone(),
                        Setup::AutoAs(name),
                        None,
                        &registry,
                    );
                    match client::start(opening).await {
                        Ok(mut again) => {
                            let events = std::mem::replace(&mut again.events, mpsc::channel(1).1);
                            let link = again.link.clone();
                            links[0] = Some(ServerLink::new(0, link, events, &event_tx, &reply_tx));
                            started = again;
                        }
                        Err(e) => {
                            let _ = reply_tx.try_send((
                                0,
                                Reply::Failed {
                                    context: "cannot register".into(),
                                    error: e.to_string(),
                                },
                            ));
                        }
                    }
                }
                Cmd::MouseCapture(on) => {
                    let mut out = std::io::stdout();
                    let _ = if on {
                        execute!(out, EnableMouseCapture)
                    } else {
                        execute!(out, DisableMouseCapture)
                    };
                }
                cmd => match links.get(server).and_then(Option::as_ref) {
                    Some(link) => link.carry_out(cmd),
                    None => {
                        let alias = app.servers.get(server).map_or("", |s| s.alias.as_str());
                        let error = format!("no connection to `{alias}`");
                        let reply = effects::not_sent(cmd, &error).unwrap_or(Reply::Failed {
                            context: format!("cannot reach `{alias}`"),
                            error: "it could not be opened".into(),
                        });
                        let _ = reply_tx.try_send((server, reply));
                    }
                },
            }
        }
        if app.quit {
            if let Err(e) = state::save_last_room(&options.config_dir, &app.focused_room().id) {
                tracing::warn!(%e, "cannot remember the room in view");
            }
            break;
        }
        // A tick changes the screen only while a countdown runs.
        if !ticked || countdown(&app) != before {
            terminal.draw(|f| view::view(&app, f))?;
        }
    }
    Ok(())
}

/// The next link event or reply already waiting, without waiting for one. Each queue is
/// asked only when the one before it is empty, so nothing taken is ever dropped.
fn next_pending(
    link_events: &mut mpsc::Receiver<(usize, LinkEvent)>,
    replies: &mut mpsc::Receiver<(usize, Reply)>,
) -> Option<Msg> {
    if let Ok((server, event)) = link_events.try_recv() {
        return Some(on(server, Msg::Link(event)));
    }
    replies
        .try_recv()
        .ok()
        .map(|(server, reply)| on(server, Msg::Done(reply)))
}

/// The wall clock, read here and nowhere in `update`: each message carries its time in.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a tick can change on screen: the reconnect countdown, and permission requests
/// running out of time.
fn countdown(app: &App) -> String {
    format!(
        "{} {}",
        widgets::status::connections_text(app),
        app.pending_approvals().count()
    )
}

fn terminal_msg(event: Event) -> Option<Msg> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => Some(Msg::Key(key)),
        Event::Mouse(mouse) => Some(Msg::Mouse(mouse)),
        Event::Paste(text) => Some(Msg::Paste(text)),
        Event::Resize(..) => Some(Msg::Resize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn draining_both_full_queues_loses_no_reply() {
        let (events_tx, mut events) = mpsc::channel(8);
        let (replies_tx, mut replies) = mpsc::channel(8);
        for n in 0..4u64 {
            let event = LinkEvent::Disconnected {
                reason: format!("event {n}"),
                retry_in: Duration::from_secs(n),
            };
            events_tx.try_send((n as usize % 2, event)).unwrap();
            let reply = Reply::Failed {
                context: format!("reply {n}"),
                error: String::new(),
            };
            replies_tx.try_send((1, reply)).unwrap();
        }
        let mut seen = Vec::new();
        while let Some(Msg::On { server, msg }) = next_pending(&mut events, &mut replies) {
            seen.push(match *msg {
                Msg::Link(LinkEvent::Disconnected { reason, .. }) => format!("{server} {reason}"),
                Msg::Done(Reply::Failed { context, .. }) => format!("{server} {context}"),
                other => panic!("unexpected {other:?}"),
            });
        }
        let expected: Vec<String> = (0..4)
            .map(|n| format!("{} event {n}", n % 2))
            .chain((0..4).map(|n| format!("1 reply {n}")))
            .collect();
        assert_eq!(seen, expected);
    }
}
