//! Tab completion of commands, channels and people.

use ratatui_textarea::CursorMove;

use super::commands::COMMANDS;
use super::{Cmd, Listing};
use crate::app::model::{App, Completion, new_input};

/// How often Tab or a typed `#` may ask the server for channel names (ms).
const REFRESH_EVERY_MS: i64 = 5_000;

/// Asks for the channel list again, so Tab knows channels created since the last listing;
/// at most once per `REFRESH_EVERY_MS`. The answer arrives before the person's next Tab.
pub(super) fn refresh_channels(app: &mut App) -> Vec<Cmd> {
    if app
        .channels_listed_at
        .is_some_and(|at| app.now_ms - at < REFRESH_EVERY_MS)
    {
        return Vec::new();
    }
    app.channels_listed_at = Some(app.now_ms);
    vec![Cmd::ListChannels(Listing::Refresh)]
}

/// Completes the word before the cursor: commands, then channel names, then people.
pub(super) fn complete(app: &mut App) -> Vec<Cmd> {
    let ratatui_textarea::DataCursor(row, col) = app.input.cursor();
    let line = app.input.lines().get(row).cloned().unwrap_or_default();
    let byte_col = line.char_indices().nth(col).map_or(line.len(), |(i, _)| i);
    let before = &line[..byte_col];
    let word_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let channel_word = before[word_start..].starts_with('#')
        || ["/join ", "/j ", "/who ", "/leave ", "/part "]
            .iter()
            .any(|c| line.starts_with(c));
    let cmds = if channel_word {
        refresh_channels(app)
    } else {
        Vec::new()
    };

    let completion = match app.completion.take() {
        Some(c) => c,
        None => {
            let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            let word = &before[start..];
            let candidates = candidates(app, word, start == 0 && row == 0);
            if candidates.is_empty() {
                return cmds;
            }
            Completion {
                start,
                candidates,
                next: 0,
            }
        }
    };
    let choice = completion.candidates[completion.next % completion.candidates.len()].clone();
    let mut new_line = line[..completion.start].to_owned();
    new_line.push_str(&choice);
    if completion.candidates.len() == 1 {
        new_line.push(' ');
    }
    let cursor_chars = new_line.chars().count();
    new_line.push_str(&line[byte_col..]);
    let mut lines: Vec<String> = app.input.lines().to_vec();
    lines[row] = new_line;
    let mut input = new_input(lines);
    input.move_cursor(CursorMove::Jump(row as u16, cursor_chars as u16));
    app.input = input;
    app.completion = Some(Completion {
        next: completion.next + 1,
        ..completion
    });
    cmds
}

fn candidates(app: &App, word: &str, first_word: bool) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut out: Vec<String> = if first_word && word.starts_with('/') {
        COMMANDS.iter().map(|c| format!("/{}", c.name)).collect()
    } else if let Some(rest) = word.strip_prefix('#') {
        let _ = rest;
        app.known_channels.iter().map(|c| format!("#{c}")).collect()
    } else if word.starts_with('@') {
        people(app).into_iter().map(|p| format!("@{p}")).collect()
    } else {
        let mut all: Vec<String> = app.known_channels.iter().map(ToString::to_string).collect();
        all.extend(people(app));
        all
    };
    out.retain(|c| c.to_lowercase().starts_with(&lower) && c.len() > word.len());
    out.sort();
    out.dedup();
    out
}

/// Users and session paths in the focused room, for completion.
fn people(app: &App) -> Vec<String> {
    let room = app.focused_room();
    let mut out: Vec<String> = room.members.iter().map(ToString::to_string).collect();
    out.extend(room.online.iter().map(|s| s.path.to_string()));
    out.extend(app.agents.keys().map(ToString::to_string));
    out
}
