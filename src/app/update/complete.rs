//! Tab completion of commands, channels, people and the fixed words of commands' arguments
//! (each command's `complete` in `table` says what its arguments are).

use ratatui_textarea::CursorMove;

use super::table::{Arg, COMMANDS, REPLY_MODES, lookup};
use super::{Cmd, Listing};
use crate::app::model::{App, Completion, new_input};
use crate::net::protocol::SessionKind;

/// How often Tab or a typed `#` may ask the server for channel names (ms).
const REFRESH_EVERY_MS: i64 = 5_000;

/// Asks for the channel list again, so Tab knows channels created since the last listing;
/// at most once per `REFRESH_EVERY_MS`. The answer arrives before the person's next Tab.
pub(super) fn refresh_channels(app: &mut App) -> Vec<Cmd> {
    if app
        .srv()
        .channels_listed_at
        .is_some_and(|at| app.now_ms - at < REFRESH_EVERY_MS)
    {
        return Vec::new();
    }
    app.srv_mut().channels_listed_at = Some(app.now_ms);
    vec![Cmd::ListChannels(Listing::Refresh)]
}

/// Completes the word before the cursor: commands, then channel names, then people.
pub(super) fn complete(app: &mut App) -> Vec<Cmd> {
    let ratatui_textarea::DataCursor(row, col) = app.input.cursor();
    let line = app.input.lines().get(row).cloned().unwrap_or_default();
    let byte_col = line.char_indices().nth(col).map_or(line.len(), |(i, _)| i);
    let before = &line[..byte_col];
    let word_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let slot = if row == 0 {
        slot(&before[..word_start])
    } else {
        Slot::Free
    };
    let channel_word = before[word_start..].starts_with('#') || slot == Slot::Arg(Arg::Channel);
    let cmds = if channel_word {
        refresh_channels(app)
    } else {
        Vec::new()
    };

    let completion = match app.completion.take() {
        Some(c) => c,
        None => {
            let start = word_start;
            let word = &before[start..];
            let candidates = candidates(app, word, slot);
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

/// Where the word being completed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// First on the line: a command's name.
    Command,
    /// An argument of a known kind.
    Arg(Arg),
    /// The value of `/set reply-mode`.
    ReplyMode,
    /// Anything else: in a message, or an argument Tab knows nothing of.
    Free,
}

/// The slot of the word that starts after `words_before` (the line up to it).
fn slot(words_before: &str) -> Slot {
    let words: Vec<&str> = words_before.split_whitespace().collect();
    let Some((first, args)) = words.split_first() else {
        return Slot::Command;
    };
    let Some(command) = first.strip_prefix('/').and_then(lookup) else {
        return Slot::Free;
    };
    match command.complete.get(args.len()) {
        Some(Arg::SettingValue) if args.last() == Some(&"reply-mode") => Slot::ReplyMode,
        Some(Arg::SettingValue) => Slot::Arg(Arg::Words(&[])),
        Some(arg) => Slot::Arg(*arg),
        None => Slot::Free,
    }
}

fn candidates(app: &App, word: &str, slot: Slot) -> Vec<String> {
    let lower = word.to_lowercase();
    let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect();
    // Channels and people, with the `#` or `@` typed before them kept.
    let marked = |mark: char, list: Vec<String>| -> Vec<String> {
        if word.starts_with(mark) {
            list.into_iter().map(|c| format!("{mark}{c}")).collect()
        } else {
            list
        }
    };
    let channels = || {
        app.srv()
            .known_channels
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let room = app.focused_room();
    let mut out: Vec<String> = match slot {
        Slot::Command if word.starts_with('/') => {
            COMMANDS.iter().map(|c| format!("/{}", c.name)).collect()
        }
        Slot::Arg(Arg::Words(list)) => words(list),
        Slot::ReplyMode => words(REPLY_MODES),
        Slot::Arg(Arg::Channel) => marked('#', channels()),
        Slot::Arg(Arg::User) => marked('@', room.members.iter().map(ToString::to_string).collect()),
        Slot::Arg(Arg::UserOrPath) => marked('@', people(app)),
        // With `@`, unless the person started the name without it.
        Slot::Arg(Arg::Agent) => room
            .online
            .iter()
            .filter(|s| s.kind == SessionKind::Agent)
            .map(|s| match word.is_empty() || word.starts_with('@') {
                true => format!("@{}", s.path),
                false => s.path.to_string(),
            })
            .collect(),
        Slot::Command | Slot::Arg(Arg::Free | Arg::SettingValue) | Slot::Free => {
            if word.starts_with('#') {
                marked('#', channels())
            } else if word.starts_with('@') {
                marked('@', people(app))
            } else {
                let mut all: Vec<String> = channels();
                all.extend(people(app));
                all
            }
        }
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
