//! The help's text, built from the keymap (so a rebound key shows as bound) and from the one
//! table of slash commands. Plain lines: the overlay draws and scrolls them.

use super::settings::{Action, Settings};
use super::update::COMMANDS;

/// Where the description column starts; a longer key list pushes its own line's text right.
const COLUMN: usize = 22;

/// The keys' lines: one action, or a pair ("next / previous") sharing a line.
const KEYS: &[(&[Action], &str)] = &[
    (&[Action::Send], "send"),
    (&[Action::Newline], "new line"),
    (&[Action::Complete], "complete (empty box: next pane)"),
    (
        &[Action::NextRoom, Action::PrevRoom],
        "next / previous room",
    ),
    (&[Action::NextUnread], "next unread room, mentions first"),
    (
        &[Action::NextPane, Action::PrevPane],
        "next / previous pane",
    ),
    (
        &[Action::ScrollUp, Action::ScrollDown],
        "scroll a page up / down",
    ),
    (
        &[Action::ScrollTop, Action::ScrollBottom],
        "oldest / newest (empty box)",
    ),
    (&[Action::Search], "search: Enter/Up older, Down newer"),
    (&[Action::Agents], "permission requests, autonomy"),
    (
        &[Action::Allow, Action::Deny],
        "allow / deny the oldest request",
    ),
    (&[Action::Help], "this help"),
    (&[Action::Close], "close a box, end a search"),
    (&[Action::ClearLine], "clear to the start of the line"),
    (&[Action::Undo, Action::Redo], "undo / redo typing"),
    (&[Action::ToggleMouse], "mouse off (select text) / on"),
    (&[Action::Quit], "clear the draft; again: quit"),
];

/// One entry; a left side too long for its column gets a line of its own, so no line is
/// wider than the column plus the longest description (the help fits 60 columns).
fn row(out: &mut Vec<String>, left: &str, what: &str) {
    let width = left.chars().count() + 2;
    if width + 1 > COLUMN {
        out.push(format!("  {left}"));
        out.push(format!("{}{what}", " ".repeat(COLUMN)));
    } else {
        out.push(format!("  {left}{}{what}", " ".repeat(COLUMN - width)));
    }
}

/// Every line of the help: keys, then commands.
pub fn lines(settings: &Settings) -> Vec<String> {
    let keymap = &settings.keymap;
    let mut out = vec!["Keys".to_owned()];
    for (actions, what) in KEYS {
        let keys = match actions {
            [one] => keymap.keys(*one).join(", "),
            many => many
                .iter()
                .map(|a| keymap.key(*a))
                .collect::<Vec<_>>()
                .join(" / "),
        };
        row(&mut out, &keys, what);
    }
    row(&mut out, "Up, Down", "input history (empty box)");
    row(&mut out, "mouse wheel", "scroll");
    row(&mut out, "? (empty box)", "this help");
    row(&mut out, "/ (scrolled up)", "search this pane");
    row(
        &mut out,
        "in the agents box",
        "a allow, d deny, 1-4 set the level",
    );
    out.push(String::new());
    out.push("Commands".to_owned());
    for command in COMMANDS {
        let left = if command.args.is_empty() {
            format!("/{}", command.name)
        } else {
            format!("/{} {}", command.name, command.args)
        };
        row(&mut out, &left, command.what);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::settings::Action;

    #[test]
    fn every_action_has_a_line_in_the_help() {
        let listed: Vec<Action> = KEYS.iter().flat_map(|(a, _)| a.iter().copied()).collect();
        for action in [
            Action::Send,
            Action::Newline,
            Action::Complete,
            Action::NextPane,
            Action::PrevPane,
            Action::NextRoom,
            Action::PrevRoom,
            Action::NextUnread,
            Action::ScrollUp,
            Action::ScrollDown,
            Action::ScrollTop,
            Action::ScrollBottom,
            Action::Search,
            Action::Help,
            Action::Agents,
            Action::Allow,
            Action::Deny,
            Action::Close,
            Action::Quit,
            Action::ClearLine,
            Action::Undo,
            Action::Redo,
            Action::ToggleMouse,
        ] {
            assert!(listed.contains(&action), "{action:?}");
        }
    }

    #[test]
    fn the_help_lists_every_command_and_the_keys_as_bound() {
        let settings = Settings::defaults();
        let text = lines(&settings).join("\n");
        for command in COMMANDS {
            assert!(
                text.contains(&format!("/{}", command.name)),
                "{}",
                command.name
            );
        }
        assert!(text.contains("Alt-Y"));
        assert!(text.contains(&settings.keymap.key(Action::Search)));
        assert!(text.contains("Enter/Up older, Down newer"));
        let widest = lines(&settings).iter().map(|l| l.chars().count()).max();
        assert!(widest <= Some(56), "the help fits 60 columns: {widest:?}");
    }
}
