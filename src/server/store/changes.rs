//! Edits, deletes and reactions as both stores apply them: who may change which message, what
//! a reaction may add, the audit entry an edit or delete leaves, and how history pages gather
//! the reactions on their messages. The stores read the rows; the rules are asked here.

use std::collections::HashMap;

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Change, ChatMessage, MAX_REACTION_USERS, MAX_REACTIONS_PER_MESSAGE, ProtocolError, Reaction,
    SessionKind,
};
use crate::server::rules::{self, Standing};

use super::{AuditRecord, ChannelId, UserId};

/// The reactions on messages `first..=last` of a channel, each with its rank among those who
/// made the same one (oldest first), how many made it, and when it was first made: so a page
/// reads only the users it names, however many reacted. SQL for both stores; the arguments
/// are the placeholders of the channel, `first` and `last`.
macro_rules! reactions_ranked {
    ($channel:literal, $first:literal, $last:literal) => {
        concat!(
            "SELECT seq, reaction, user_name,
                    row_number() OVER (PARTITION BY seq, reaction ORDER BY event_seq) AS rank,
                    count(*) OVER (PARTITION BY seq, reaction) AS made,
                    min(event_seq) OVER (PARTITION BY seq, reaction) AS first
             FROM reactions WHERE channel_id = ",
            $channel,
            " AND seq BETWEEN ",
            $first,
            " AND ",
            $last
        )
    };
}
pub(in crate::server::store) use reactions_ranked;

/// The message an event changes, as its store read it.
#[derive(Debug, Clone)]
pub struct Target {
    pub sender_id: UserId,
    /// The target is itself an event: events are not changed.
    pub is_event: bool,
    pub deleted: bool,
    pub text: String,
}

/// What a reaction finds on its target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reactions {
    /// The seq of the event by which this user already reacted so, if they did.
    pub mine: Option<u64>,
    /// Different reactions on the target.
    pub kinds: usize,
    /// This reaction is among them (by anyone).
    pub present: bool,
}

/// What a change comes to once allowed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Store the event and apply it.
    Apply,
    /// The user already reacted so: the earlier event answers (seq), nothing is stored.
    AlreadyReacted(u64),
}

/// Who makes a change: their user, where they stand in the channel, and the kind of session
/// they make it from.
#[derive(Debug, Clone, Copy)]
pub struct Changer {
    pub user: UserId,
    pub standing: Standing,
    pub kind: SessionKind,
}

/// Whether `by` may make `change` with `text` in `channel`. `target` is `None` when no such
/// message is stored.
pub fn check(
    channel: &Name,
    change: &Change,
    text: &str,
    target: Option<&Target>,
    by: Changer,
    reactions: Reactions,
) -> Result<Verdict, ProtocolError> {
    let seq = change.target();
    let target = match target {
        Some(t) if !t.is_event => t,
        Some(_) => {
            return Err(ProtocolError::invalid(format!(
                "#{channel}:{seq} is an edit, delete or reaction, not a message"
            )));
        }
        None => {
            return Err(ProtocolError::not_found(format!(
                "#{channel} has no message {seq}"
            )));
        }
    };
    if target.deleted {
        return Err(ProtocolError::not_found(format!(
            "#{channel}:{seq} was deleted"
        )));
    }
    let own = target.sender_id == by.user;
    // Deleting someone else's message is a moderator's act: a person's, and never in a direct
    // conversation, which nobody governs.
    let may_moderate =
        rules::may_moderate(by.standing) && by.kind == SessionKind::Human && !channel.is_direct();
    match change {
        Change::Edit { .. } if !own => Err(ProtocolError::forbidden(format!(
            "only its sender may edit #{channel}:{seq}"
        ))),
        Change::Edit { .. } if target.text == text => Err(ProtocolError::invalid(format!(
            "#{channel}:{seq} already reads so"
        ))),
        Change::Delete { .. } if !own && !may_moderate => Err(ProtocolError::forbidden(format!(
            "only its sender and the moderators of #{channel} may delete #{channel}:{seq}"
        ))),
        Change::React { removed: false, .. } => match reactions.mine {
            Some(event) => Ok(Verdict::AlreadyReacted(event)),
            None if !reactions.present && reactions.kinds >= MAX_REACTIONS_PER_MESSAGE => {
                Err(ProtocolError::invalid(format!(
                    "#{channel}:{seq} has {MAX_REACTIONS_PER_MESSAGE} different reactions, the most a message may"
                )))
            }
            None => Ok(Verdict::Apply),
        },
        Change::React { removed: true, .. } if reactions.mine.is_none() => Err(
            ProtocolError::not_found(format!("you have not reacted {text} to #{channel}:{seq}")),
        ),
        _ => Ok(Verdict::Apply),
    }
}

/// Whether an event counts as an agent's turn for the brakes: a post or an edit (both are
/// pushed to every agent there), not a delete or a reaction.
pub fn is_turn(change: Option<&Change>) -> bool {
    matches!(change, None | Some(Change::Edit { .. }))
}

/// What an edit's audit entry says once its message was deleted: the old text goes too.
pub const FORGOTTEN: &str = "edited a message since deleted";

/// The audit target of an edit or delete of message `seq`, as `forget_edits` finds it again.
pub fn audit_target(seq: u64) -> String {
    format!("message {seq}")
}

/// The audit entry an edit or a delete leaves (a reaction leaves none; nor does anything in a
/// direct conversation, which no moderator reads). An edit keeps the text it replaced, for the
/// channel's moderators, until the message is deleted; a delete names what it took away, not
/// its text.
pub fn audit(
    channel: (ChannelId, &Name),
    change: &Change,
    target: &Target,
    (by, by_id): (&SessionPath, UserId),
    ts: i64,
) -> Option<AuditRecord> {
    let seq = change.target();
    if channel.1.is_direct() {
        return None;
    }
    let (action, detail) = match change {
        Change::Edit { .. } => (
            "edit",
            format!("edited #{}:{seq}; it read: {}", channel.1, target.text),
        ),
        Change::Delete { .. } if target.sender_id == by_id => (
            "delete",
            format!("deleted their message #{}:{seq}", channel.1),
        ),
        Change::Delete { .. } => ("delete", format!("deleted #{}:{seq}", channel.1)),
        Change::React { .. } => return None,
    };
    Some(AuditRecord {
        ts,
        actor_id: by_id,
        by: by.clone(),
        action: action.to_owned(),
        channel: Some((channel.0, channel.1.clone())),
        target: Some(audit_target(seq)),
        detail,
        reason: None,
    })
}

/// Puts reactions on the messages of a page, from rows of (seq, reaction, user, how many made
/// it): each reaction's first users, in the order the reactions were first made.
pub fn attach_reactions(messages: &mut [ChatMessage], rows: Vec<(u64, String, Name, u32)>) {
    let mut by_seq: HashMap<u64, Vec<Reaction>> = HashMap::new();
    for (seq, reaction, user, made) in rows {
        let on = by_seq.entry(seq).or_default();
        let i = match on.iter().position(|r| r.reaction == reaction) {
            Some(i) => i,
            None => {
                on.push(Reaction {
                    reaction,
                    count: made,
                    users: Vec::new(),
                });
                on.len() - 1
            }
        };
        let r = &mut on[i];
        if r.users.len() < MAX_REACTION_USERS {
            r.users.push(user);
        }
    }
    for m in messages {
        if let Some(reactions) = by_seq.remove(&m.seq) {
            m.reactions = reactions;
        }
    }
}

/// The seq range of a page's messages that may carry reactions (none are events).
pub fn reaction_range(messages: &[ChatMessage]) -> Option<(u64, u64)> {
    let seqs = messages
        .iter()
        .filter(|m| m.change.is_none())
        .map(|m| m.seq);
    Some((seqs.clone().min()?, seqs.max()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::protocol::Role;

    fn target(sender_id: UserId) -> Target {
        Target {
            sender_id,
            is_event: false,
            deleted: false,
            text: "hello".into(),
        }
    }

    fn member() -> Standing {
        Standing {
            role: Some(Role::Member),
            admin: false,
        }
    }

    /// User 1 at a person's session, standing at `standing`.
    fn person(standing: Standing) -> Changer {
        Changer {
            user: 1,
            standing,
            kind: SessionKind::Human,
        }
    }

    fn ops() -> Name {
        Name::channel("ops").unwrap()
    }

    #[test]
    fn only_the_sender_edits_and_moderators_may_delete_too() {
        let edit = Change::Edit { target: 1 };
        let ok = check(
            &ops(),
            &edit,
            "hi",
            Some(&target(1)),
            person(member()),
            Reactions::default(),
        );
        assert_eq!(ok.unwrap(), Verdict::Apply);
        let theirs = check(
            &ops(),
            &edit,
            "hi",
            Some(&target(2)),
            person(member()),
            Reactions::default(),
        );
        assert!(
            theirs
                .unwrap_err()
                .message
                .contains("only its sender may edit")
        );
        let delete = Change::Delete { target: 1 };
        let member_deletes = check(
            &ops(),
            &delete,
            "",
            Some(&target(2)),
            person(member()),
            Reactions::default(),
        );
        assert!(member_deletes.is_err());
        let moderator = Standing {
            role: Some(Role::Moderator),
            admin: false,
        };
        let moderated = check(
            &ops(),
            &delete,
            "",
            Some(&target(2)),
            person(moderator),
            Reactions::default(),
        );
        assert_eq!(moderated.unwrap(), Verdict::Apply);
        // Not from an agent's session, whatever its user's rank, and never in a direct
        // conversation.
        let as_agent = Changer {
            kind: SessionKind::Agent,
            ..person(moderator)
        };
        let by_agent = check(
            &ops(),
            &delete,
            "",
            Some(&target(2)),
            as_agent,
            Reactions::default(),
        );
        assert!(by_agent.is_err());
        let dm = Name::channel("alice+bob").unwrap();
        let in_dm = check(
            &dm,
            &delete,
            "",
            Some(&target(2)),
            person(moderator),
            Reactions::default(),
        );
        assert!(in_dm.is_err());
        assert!(is_turn(None) && is_turn(Some(&edit)) && !is_turn(Some(&delete)));
    }

    #[test]
    fn events_missing_and_deleted_messages_are_not_changed() {
        let edit = Change::Edit { target: 3 };
        let missing = check(
            &ops(),
            &edit,
            "x",
            None,
            person(member()),
            Reactions::default(),
        );
        assert_eq!(missing.unwrap_err().message, "#ops has no message 3");
        let event = Target {
            is_event: true,
            ..target(1)
        };
        assert!(
            check(
                &ops(),
                &edit,
                "x",
                Some(&event),
                person(member()),
                Reactions::default()
            )
            .is_err()
        );
        let gone = Target {
            deleted: true,
            ..target(1)
        };
        let refused = check(
            &ops(),
            &edit,
            "x",
            Some(&gone),
            person(member()),
            Reactions::default(),
        );
        assert_eq!(refused.unwrap_err().message, "#ops:3 was deleted");
    }

    #[test]
    fn a_reaction_is_made_once_and_taken_back_only_when_made() {
        let react = Change::React {
            target: 1,
            removed: false,
        };
        let again = Reactions {
            mine: Some(7),
            kinds: 1,
            present: true,
        };
        let verdict = check(
            &ops(),
            &react,
            "👍",
            Some(&target(2)),
            person(member()),
            again,
        );
        assert_eq!(verdict.unwrap(), Verdict::AlreadyReacted(7));
        let full = Reactions {
            mine: None,
            kinds: MAX_REACTIONS_PER_MESSAGE,
            present: false,
        };
        assert!(
            check(
                &ops(),
                &react,
                "new",
                Some(&target(2)),
                person(member()),
                full
            )
            .is_err()
        );
        let joining = Reactions {
            present: true,
            ..full
        };
        assert!(
            check(
                &ops(),
                &react,
                "👍",
                Some(&target(2)),
                person(member()),
                joining
            )
            .is_ok()
        );
        let unreact = Change::React {
            target: 1,
            removed: true,
        };
        let never = check(
            &ops(),
            &unreact,
            "👍",
            Some(&target(2)),
            person(member()),
            Reactions::default(),
        );
        assert_eq!(
            never.unwrap_err().message,
            "you have not reacted 👍 to #ops:1"
        );
    }

    #[test]
    fn reactions_gather_per_message_and_reaction_in_order() {
        let seen = |seq| {
            ChatMessage::posted(
                ops(),
                seq,
                0,
                SessionPath::parse("a/b/c").unwrap(),
                String::new(),
            )
        };
        let mut page = vec![seen(1), seen(2)];
        let user = |n: &str| Name::user(n).unwrap();
        attach_reactions(
            &mut page,
            vec![
                (1, "👍".into(), user("bob"), 2),
                (1, "👍".into(), user("carol"), 2),
                (1, "seen".into(), user("carol"), 1),
            ],
        );
        assert_eq!(page[0].reactions.len(), 2);
        assert_eq!(page[0].reactions[0].count, 2);
        assert_eq!(page[0].reactions[0].users, [user("bob"), user("carol")]);
        assert!(page[1].reactions.is_empty());
        assert_eq!(reaction_range(&page), Some((1, 2)));
    }
}
