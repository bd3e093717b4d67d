//! Changes to earlier messages: edits, deletes and reactions. Each is an event stored under a
//! seq of its own in the channel, so a client that was away learns of it in order, once, when
//! it catches up, exactly as it learns of new messages.

use serde::{Deserialize, Serialize};

use super::ProtocolError;
use crate::net::names::Name;

/// Longest reaction, in bytes: an emoji sequence or a short word (`seen`, `working-on-it`).
pub const MAX_REACTION_BYTES: usize = 32;

/// Most different reactions one message carries.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;

/// Most reacting users a message names per reaction (the count says how many there are).
pub const MAX_REACTION_USERS: usize = 20;

/// What an event does to message `target` of the same channel. The event's own text is the
/// new text of an edit and the reaction of a reaction; a delete's is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Change {
    /// The target now reads as this event's text (its sender's own messages only).
    Edit { target: u64 },
    /// The target's text is gone; its seq stays, as a tombstone. Its sender, the channel's
    /// moderators and its owner may.
    Delete { target: u64 },
    /// The sender's user reacted to the target with this event's text, or took that back.
    React {
        target: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        removed: bool,
    },
}

impl Change {
    /// The seq of the message the event changes.
    pub fn target(&self) -> u64 {
        match self {
            Self::Edit { target } | Self::Delete { target } | Self::React { target, .. } => *target,
        }
    }

    /// The event's name, as `tail --format json` and the agent's events spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Edit { .. } => "edit",
            Self::Delete { .. } => "delete",
            Self::React { removed: false, .. } => "react",
            Self::React { removed: true, .. } => "unreact",
        }
    }

    /// The change a stored event holds, from its `name` and target (`None` for a name this
    /// version does not know).
    pub fn from_stored(name: &str, target: u64) -> Option<Self> {
        Some(match name {
            "edit" => Self::Edit { target },
            "delete" => Self::Delete { target },
            "react" => Self::React {
                target,
                removed: false,
            },
            "unreact" => Self::React {
                target,
                removed: true,
            },
            _ => return None,
        })
    }

    /// Checks the event's text: an edit's as a message, a reaction's as a reaction, and a
    /// delete carries none.
    pub fn checks_text(&self, text: &str) -> Result<(), ProtocolError> {
        match self {
            Self::Edit { .. } => super::check_text(text),
            Self::Delete { .. } if text.is_empty() => Ok(()),
            Self::Delete { .. } => Err(ProtocolError::invalid("a delete carries no text")),
            Self::React { .. } => check_reaction(text),
        }
    }
}

/// One reaction on a message: who reacted with it (the first `MAX_REACTION_USERS`, oldest
/// first) and how many did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub reaction: String,
    pub count: u32,
    pub users: Vec<Name>,
}

/// A reaction is one short token: no spaces or control characters, at most
/// `MAX_REACTION_BYTES`.
pub fn check_reaction(reaction: &str) -> Result<(), ProtocolError> {
    if reaction.is_empty() {
        return Err(ProtocolError::invalid("a reaction is empty"));
    }
    if reaction.len() > MAX_REACTION_BYTES {
        return Err(ProtocolError::invalid(format!(
            "a reaction is at most {MAX_REACTION_BYTES} bytes"
        )));
    }
    if reaction
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return Err(ProtocolError::invalid(
            "a reaction is one emoji or word, without spaces or control characters",
        ));
    }
    Ok(())
}

/// Bidi overrides and isolates, which would let a reaction rearrange the line it is shown on.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_one_short_visible_token() {
        for good in ["👍", "seen", "working-on-it", "👩‍💻", "✅"] {
            assert!(check_reaction(good).is_ok(), "{good}");
        }
        for bad in ["", "two words", "tab\t", "x\u{202e}y", &"a".repeat(33)] {
            assert!(check_reaction(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_delete_carries_no_text_and_a_reaction_is_checked() {
        assert!(Change::Delete { target: 1 }.checks_text("").is_ok());
        assert!(Change::Delete { target: 1 }.checks_text("x").is_err());
        let react = Change::React {
            target: 1,
            removed: false,
        };
        assert!(react.checks_text("a b").is_err());
        assert_eq!(react.name(), "react");
        for change in [
            Change::Edit { target: 4 },
            Change::Delete { target: 4 },
            react.clone(),
        ] {
            let target = change.target();
            assert_eq!(Change::from_stored(change.name(), target), Some(change));
        }
        assert_eq!(
            Change::React {
                target: 1,
                removed: true
            }
            .name(),
            "unreact"
        );
    }
}
