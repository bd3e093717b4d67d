//! Keys: the keymap's actions in the input line, the overlays and search.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::commands::{autonomy_cmd, submit};
use super::complete::{complete, refresh_channels};
use super::moderation::close_audit;
use super::navigate::{
    Direction, Scroll, cycle_pane, cycle_room, find, next_unread, recall, scroll,
};
use super::{Cmd, error, set_input};
use crate::app::help;
use crate::app::model::{App, Overlay, Search};
use crate::app::settings::Action;
use crate::net::protocol::{Audience, Autonomy, RelayBody};

pub(super) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Cmd> {
    if let Some(overlay) = app.overlay {
        return on_overlay_key(app, overlay, key);
    }
    if app.search.is_some() {
        return on_search_key(app, key);
    }
    let action = app.settings.keymap.action(&key);
    if action != Some(Action::Complete) {
        app.completion = None;
    }
    let empty = app.input.is_empty();
    match (action, key.code) {
        // As in a shell: Ctrl-C drops the draft first, and quits from an empty box.
        (Some(Action::Quit), _) if !empty => {
            app.sent_pos = None;
            set_input(app, "");
        }
        (Some(Action::Quit), _) => {
            app.quit = true;
            return Vec::new();
        }
        (Some(Action::ClearLine), _) => {
            app.input.delete_line_by_head();
        }
        (Some(Action::Undo), _) => {
            app.input.undo();
        }
        (Some(Action::Redo), _) => {
            app.input.redo();
        }
        (Some(Action::ToggleMouse), _) => {
            app.mouse_capture = !app.mouse_capture;
            return vec![Cmd::MouseCapture(app.mouse_capture)];
        }
        (Some(Action::Send), _) => return submit(app),
        (Some(Action::Newline), _) => app.input.insert_newline(),
        (Some(Action::Complete), _) if !empty => return complete(app),
        (Some(Action::Complete), _) => cycle_pane(app, 1),
        (Some(Action::NextPane), _) => cycle_pane(app, 1),
        (Some(Action::PrevPane), _) => cycle_pane(app, -1),
        (Some(Action::NextRoom), _) => cycle_room(app, 1),
        (Some(Action::PrevRoom), _) => cycle_room(app, -1),
        (Some(Action::NextUnread), _) => next_unread(app),
        (Some(Action::ScrollUp), _) => return scroll(app, Scroll::PageUp),
        (Some(Action::ScrollDown), _) => return scroll(app, Scroll::PageDown),
        (Some(Action::ScrollTop), _) if empty => return scroll(app, Scroll::Top),
        (Some(Action::ScrollBottom), _) if empty => return scroll(app, Scroll::Bottom),
        (Some(Action::Search), _) => app.search = Some(Search::default()),
        (Some(Action::Help), _) => app.overlay = Some(Overlay::Help { scroll: 0 }),
        (Some(Action::Agents), _) => app.overlay = Some(Overlay::Agents { selected: 0 }),
        (Some(Action::Allow), _) => return answer_oldest(app, true),
        (Some(Action::Deny), _) => return answer_oldest(app, false),
        (Some(Action::Close), _) => close_audit(app),
        (_, KeyCode::Char('?')) if empty && key.modifiers.is_empty() => {
            app.overlay = Some(Overlay::Help { scroll: 0 })
        }
        (_, KeyCode::Char('/')) if empty && app.focused_pane().scroll > 0 => {
            app.search = Some(Search::default())
        }
        (_, KeyCode::Up) if empty || app.sent_pos.is_some() => recall(app, -1),
        (_, KeyCode::Down) if app.sent_pos.is_some() => recall(app, 1),
        _ => {
            app.sent_pos = None;
            app.input.input(key);
            // A channel name is coming: fetch the names, so Tab knows new channels.
            if key.code == KeyCode::Char('#') {
                return refresh_channels(app);
            }
        }
    }
    Vec::new()
}

fn on_overlay_key(app: &mut App, overlay: Overlay, key: KeyEvent) -> Vec<Cmd> {
    let action = app.settings.keymap.action(&key);
    match overlay {
        Overlay::Help { scroll } => {
            let rows = usize::from(app.overlay_rows.get()).max(1);
            let max = help::lines(&app.settings).len().saturating_sub(rows);
            let page = rows.saturating_sub(1).max(1);
            let moved = match key.code {
                KeyCode::Up => Some(scroll.saturating_sub(1)),
                KeyCode::Down => Some(scroll + 1),
                KeyCode::PageUp => Some(scroll.saturating_sub(page)),
                KeyCode::PageDown | KeyCode::Char(' ') => Some(scroll + page),
                KeyCode::Home => Some(0),
                KeyCode::End => Some(max),
                _ => None,
            };
            app.overlay = moved.map(|s| Overlay::Help { scroll: s.min(max) });
            if action == Some(Action::Quit) {
                app.quit = true;
            }
            Vec::new()
        }
        Overlay::Agents { selected } => {
            // One list: the permission requests, then my agents.
            let requests = app.approvals.len();
            let count = requests + app.agents.len();
            let agent = selected
                .checked_sub(requests)
                .and_then(|i| app.agents.keys().nth(i).cloned());
            let level = match key.code {
                KeyCode::Char('1') => Some(Autonomy::Mute),
                KeyCode::Char('2') => Some(Autonomy::Notify),
                KeyCode::Char('3') => Some(Autonomy::Converse),
                KeyCode::Char('4') => Some(Autonomy::Act),
                _ => None,
            };
            match (action, key.code, agent, level) {
                (Some(Action::Quit), ..) => app.quit = true,
                (Some(Action::Close | Action::Agents), ..) | (_, KeyCode::Char('q'), ..) => {
                    app.overlay = None
                }
                (_, KeyCode::Up, ..) => {
                    app.overlay = Some(Overlay::Agents {
                        selected: selected.saturating_sub(1),
                    })
                }
                (_, KeyCode::Down, ..) => {
                    app.overlay = Some(Overlay::Agents {
                        selected: (selected + 1).min(count.saturating_sub(1)),
                    })
                }
                (_, _, Some(agent), Some(level)) => {
                    let channel = app.focused_room().channel().cloned();
                    return match autonomy_cmd(app, agent, channel, level) {
                        Ok(cmds) => cmds,
                        Err(message) => {
                            error(app, message);
                            Vec::new()
                        }
                    };
                }
                (Some(Action::Allow), ..) | (_, KeyCode::Char('a' | 'y'), None, _) => {
                    return answer(app, selected, true);
                }
                (Some(Action::Deny), ..) | (_, KeyCode::Char('d' | 'n'), None, _) => {
                    return answer(app, selected, false);
                }
                _ => {}
            }
            Vec::new()
        }
    }
}

fn on_search_key(app: &mut App, key: KeyEvent) -> Vec<Cmd> {
    let action = app.settings.keymap.action(&key);
    let Some(search) = app.search.as_mut() else {
        return Vec::new();
    };
    match (action, key.code) {
        (Some(Action::Quit), _) => app.quit = true,
        (Some(Action::Close), _) => app.search = None,
        (Some(Action::Send), _) => find(app, Direction::Older),
        (_, KeyCode::Up) => find(app, Direction::Older),
        (_, KeyCode::Down) => find(app, Direction::Newer),
        (_, KeyCode::Backspace) => {
            search.query.pop();
            search.hit = None;
            search.failed = false;
        }
        (_, KeyCode::Char(c)) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            search.query.push(c);
            search.hit = None;
            search.failed = false;
        }
        _ => {}
    }
    Vec::new()
}

fn answer_oldest(app: &mut App, allow: bool) -> Vec<Cmd> {
    let now = app.now_ms;
    match app.approvals.iter().position(|a| a.open(now)) {
        Some(index) => answer(app, index, allow),
        None => {
            error(app, "no permission request is waiting");
            Vec::new()
        }
    }
}

fn answer(app: &mut App, index: usize, allow: bool) -> Vec<Cmd> {
    let Some(approval) = app.approvals.get_mut(index) else {
        return Vec::new();
    };
    if approval.answer.is_some() {
        return Vec::new();
    }
    if approval.lapsed(app.now_ms) {
        let text = format!(
            "too late: {}'s request to use {} has expired, so nothing was {}; it may have been answered in the terminal",
            approval.agent,
            approval.tool_name,
            if allow { "allowed" } else { "denied" }
        );
        error(app, text);
        return Vec::new();
    }
    approval.sent = Some(allow);
    vec![Cmd::Relay {
        to: Some(approval.agent.clone()),
        audience: Audience::Agents,
        body: RelayBody::PermissionVerdict {
            request_id: approval.request_id.clone(),
            allow,
        },
    }]
}
