//! `conclave tui`: the terminal client for people supervising agents.
//!
//! `run` owns the terminal and the event loop and nothing else: it turns terminal input,
//! link events, command results and a one-second tick into `Msg`s for `update` (the only
//! mutator of the `App` model), carries out the `Cmd`s it returns through the link, and draws
//! `view` after each batch. Drawing never waits on the network or the disk. Reaches the
//! server only through `net::link`.

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
use crate::net::human_key;
use crate::net::identity::Identity;
use crate::net::link::LinkEvent;
use crate::net::protocol::SessionKind;

use self::model::App;
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
    /// How the TUI opens its session: as a person, reconnecting forever.
    fn opening(&self, setup: Setup, identity: Option<Arc<Identity>>) -> Opening {
        Opening {
            config_dir: self.config_dir.clone(),
            server: self.server.clone(),
            handle: None,
            default_handle: "tui".into(),
            kind: SessionKind::Human,
            persistent: true,
            setup,
            identity,
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
    let mut started = client::start(options.opening(Setup::Auto, identity)).await?;
    let offset = *chrono::Local::now().offset();
    let mut app = App::new(settings, started.server.clone(), offset);
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

    let mut link = started.link.clone();
    let mut link_events = std::mem::replace(&mut started.events, mpsc::channel(1).1);
    let (reply_tx, mut replies) = mpsc::channel::<Reply>(256);
    let mut terminal_events = crossterm::event::EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ordered = effects::spawn_sender(link.clone(), reply_tx.clone());
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
            Some(event) = link_events.recv() => Msg::Link(event),
            Some(reply) = replies.recv() => Msg::Done(reply),
            _ = tick.tick() => Msg::Tick,
        };
        let ticked = matches!(msg, Msg::Tick);
        let before = countdown(&app);
        let mut cmds = Vec::new();
        let mut next = Some(msg);
        let mut handled = 0;
        while let Some(msg) = next {
            if let Msg::Link(LinkEvent::Connected {
                path, server_id, ..
            }) = &msg
            {
                if let Err(e) = started.remember(path, server_id) {
                    tracing::warn!(%e, "cannot remember the registration");
                }
            }
            cmds.extend(update(&mut app, msg, now_ms()));
            handled += 1;
            next = if handled < BATCH {
                next_pending(&mut link_events, &mut replies)
            } else {
                None
            };
        }
        for cmd in cmds {
            match cmd {
                // Rung here, between draws, so it never lands inside an escape sequence.
                Cmd::Bell => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
                }
                // In the order typed: one task sends them one after another.
                Cmd::Send { .. } | Cmd::Whisper { .. } => {
                    if let Err(unsent) = ordered.send(cmd) {
                        // Only if the sending task ended: say so on the entry.
                        if let Some(reply) = effects::not_sent(unsent.0, "the sender stopped") {
                            let _ = reply_tx.try_send(reply);
                        }
                    }
                }
                // The name zero set-up claimed was taken: start again with the one picked.
                Cmd::Register(name) => {
                    let opening = options.opening(Setup::AutoAs(name), None);
                    match client::start(opening).await {
                        Ok(again) => {
                            started = again;
                            link = started.link.clone();
                            link_events =
                                std::mem::replace(&mut started.events, mpsc::channel(1).1);
                            ordered = effects::spawn_sender(link.clone(), reply_tx.clone());
                        }
                        Err(e) => {
                            let _ = reply_tx.try_send(Reply::Failed {
                                context: "cannot register".into(),
                                error: e.to_string(),
                            });
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
                cmd => {
                    let link = link.clone();
                    let replies = reply_tx.clone();
                    tokio::spawn(async move { effects::carry_out(cmd, &link, &replies).await });
                }
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
    link_events: &mut mpsc::Receiver<LinkEvent>,
    replies: &mut mpsc::Receiver<Reply>,
) -> Option<Msg> {
    if let Ok(event) = link_events.try_recv() {
        return Some(Msg::Link(event));
    }
    replies.try_recv().ok().map(Msg::Done)
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
        widgets::status::connection_text(app),
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
            events_tx
                .try_send(LinkEvent::Disconnected {
                    reason: format!("event {n}"),
                    retry_in: Duration::from_secs(n),
                })
                .unwrap();
            replies_tx
                .try_send(Reply::Failed {
                    context: format!("reply {n}"),
                    error: String::new(),
                })
                .unwrap();
        }
        let mut seen = Vec::new();
        while let Some(msg) = next_pending(&mut events, &mut replies) {
            seen.push(match msg {
                Msg::Link(LinkEvent::Disconnected { reason, .. }) => reason,
                Msg::Done(Reply::Failed { context, .. }) => context,
                other => panic!("unexpected {other:?}"),
            });
        }
        let expected: Vec<String> = (0..4)
            .map(|n| format!("event {n}"))
            .chain((0..4).map(|n| format!("reply {n}")))
            .collect();
        assert_eq!(seen, expected);
    }
}
