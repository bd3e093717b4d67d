//! Edits, deletes and reactions in the TUI: a message's entry as it now stands, and the events
//! that change one, applied to the entries loaded in its rooms.

use crate::net::names::Name;
use crate::net::protocol::{Change, ChatMessage, MAX_REACTION_USERS, Reaction};

use super::model::{Delivery, Entry, EntryKind, Room};

impl Entry {
    /// A channel message's entry, as the server says it now stands.
    pub fn message(m: ChatMessage, mention: bool) -> Self {
        Self {
            seq: Some(m.seq),
            ts: m.ts,
            from: Some(m.from),
            text: m.text,
            kind: EntryKind::Message,
            mention,
            delivery: Delivery::Done,
            reply_to: m.reply_to,
            edited: m.edited.is_some(),
            deleted: m.deleted,
            reactions: m.reactions,
            height: Default::default(),
        }
    }

    /// Applies a change by `by` (a user) with the event's `text`. Applying one twice changes
    /// nothing more: a history page may bring an event whose effect the entry already shows.
    pub fn apply(&mut self, change: &Change, by: &Name, text: &str) {
        match change {
            Change::Edit { .. } => {
                self.text = text.to_owned();
                self.edited = true;
            }
            Change::Delete { .. } => {
                self.text.clear();
                self.deleted = true;
                self.reactions.clear();
            }
            Change::React { removed: false, .. } => add_reaction(&mut self.reactions, text, by),
            Change::React { removed: true, .. } => remove_reaction(&mut self.reactions, text, by),
        }
        // The text (or its reactions' line) changed: wrap it again at the next draw.
        self.height.set((0, 0));
    }
}

fn add_reaction(reactions: &mut Vec<Reaction>, reaction: &str, by: &Name) {
    match reactions.iter_mut().find(|r| r.reaction == reaction) {
        Some(r) if r.users.contains(by) => {}
        Some(r) => {
            r.count += 1;
            if r.users.len() < MAX_REACTION_USERS {
                r.users.push(by.clone());
            }
        }
        None => reactions.push(Reaction {
            reaction: reaction.to_owned(),
            count: 1,
            users: vec![by.clone()],
        }),
    }
}

fn remove_reaction(reactions: &mut Vec<Reaction>, reaction: &str, by: &Name) {
    let Some(i) = reactions.iter().position(|r| r.reaction == reaction) else {
        return;
    };
    let r = &mut reactions[i];
    let Some(at) = r.users.iter().position(|u| u == by) else {
        return;
    };
    r.users.remove(at);
    r.count = r.count.saturating_sub(1);
    if r.count == 0 {
        reactions.remove(i);
    }
}

impl Room {
    /// Applies event `m` to the loaded message it changes, if any; whether one was.
    pub fn apply_change(&mut self, m: &ChatMessage, change: &Change) -> bool {
        self.last_seq = self.last_seq.max(m.seq);
        let target = Some(change.target());
        if let Change::Delete { target } = change {
            self.pins.retain(|p| p.seq != *target);
        }
        match self.entries.iter_mut().find(|e| e.seq == target) {
            Some(entry) => {
                entry.apply(change, &m.from.user, &m.text);
                true
            }
            None => false,
        }
    }

    /// Whether `me` reacted to message `seq` (as loaded) with `reaction`.
    pub fn reacted(&self, seq: u64, reaction: &str, me: &Name) -> bool {
        self.entries
            .iter()
            .find(|e| e.seq == Some(seq))
            .and_then(|e| e.reactions.iter().find(|r| r.reaction == reaction))
            .is_some_and(|r| r.users.contains(me))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::names::SessionPath;

    fn said(seq: u64, text: &str) -> ChatMessage {
        let from = SessionPath::parse("bob/box/cli").unwrap();
        ChatMessage::posted(Name::channel("ops").unwrap(), seq, 0, from, text.into())
    }

    fn event(seq: u64, change: Change, text: &str) -> ChatMessage {
        ChatMessage {
            change: Some(change),
            ..said(seq, text)
        }
    }

    #[test]
    fn edits_deletes_and_reactions_land_on_their_message_once() {
        let mut room = Room::new(super::super::model::RoomId::Home);
        room.insert_message(Entry::message(said(1, "helo"), false));
        let edit = event(2, Change::Edit { target: 1 }, "hello");
        assert!(room.apply_change(&edit, edit.change.as_ref().unwrap()));
        let react = event(
            3,
            Change::React {
                target: 1,
                removed: false,
            },
            "👍",
        );
        for _ in 0..2 {
            room.apply_change(&react, react.change.as_ref().unwrap());
        }
        let entry = &room.entries[0];
        assert_eq!((entry.text.as_str(), entry.edited), ("hello", true));
        assert_eq!(
            entry.reactions[0].count, 1,
            "the same user's reaction counts once"
        );
        let bob = Name::user("bob").unwrap();
        assert!(room.reacted(1, "👍", &bob));
        let unreact = event(
            4,
            Change::React {
                target: 1,
                removed: true,
            },
            "👍",
        );
        room.apply_change(&unreact, unreact.change.as_ref().unwrap());
        assert!(room.entries[0].reactions.is_empty());
        let delete = event(5, Change::Delete { target: 1 }, "");
        room.apply_change(&delete, delete.change.as_ref().unwrap());
        assert!(room.entries[0].deleted && room.entries[0].text.is_empty());
        assert_eq!(room.last_seq, 5);
        let elsewhere = event(6, Change::Delete { target: 9 }, "");
        assert!(!room.apply_change(&elsewhere, elsewhere.change.as_ref().unwrap()));
    }
}
