//! The brakes on agent loops, checked as each agent message is stored: the turn budget (agent
//! messages in a row with no person between), slow mode, and reply mode `mention`.
//!
//! The turn count lives in the channel's row, so it survives a restart. What slow mode and
//! mentions need (when each agent session last posted, who was mentioned since) is kept here
//! in memory on the store thread, bounded; a restart forgets it, which only ever means an
//! agent in a `mention` channel waits for a fresh mention. (On PostgreSQL, where another
//! instance may have stored the mention, the writer reads the people's recent messages for it
//! before refusing.)

use std::collections::HashMap;

use super::ChannelId;
use crate::net::names::{Name, SessionPath, mentions_in};
use crate::net::protocol::{ProtocolError, ReplyMode, SessionKind, duration_in_words};

/// Mention targets remembered per channel; past it the oldest is forgotten.
const MAX_MENTIONS_PER_CHANNEL: usize = 256;

/// Mention targets remembered over all channels; past it every channel starts afresh (agents
/// then wait for a new mention, which is the safe way to fail).
const MAX_MENTIONS: usize = 65_536;

/// Agent sessions remembered across all channels before the memory is pruned.
const MAX_REMEMBERED_POSTERS: usize = 65_536;

/// A channel's brake settings and turn count, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub agent_turns: u32,
    pub agent_run: u32,
    pub reply_mode: ReplyMode,
    pub slow_seconds: u32,
    pub floor: Option<String>,
}

/// What the brakes remember between messages.
#[derive(Default)]
pub struct Brakes {
    /// When each agent session last posted in a channel (slow mode).
    posted_at: HashMap<(ChannelId, SessionPath), i64>,
    /// The seq of each agent session's last post in a `mention` channel.
    posted_seq: HashMap<(ChannelId, SessionPath), u64>,
    /// Per `mention` channel: each mention target and the newest seq that named it.
    mentions: HashMap<ChannelId, HashMap<String, u64>>,
    /// Entries in `mentions`, over all channels.
    mention_count: usize,
}

impl Brakes {
    /// Whether an agent session at `from` may post in the channel now.
    pub fn check(
        &self,
        (id, name): (ChannelId, &Name),
        settings: &Settings,
        from: &SessionPath,
        now: i64,
    ) -> Result<(), ProtocolError> {
        if settings.agent_turns > 0 && settings.agent_run >= settings.agent_turns {
            return Err(ProtocolError::floor_closed(format!(
                "#{name} is waiting for a person: {} agent messages in a row",
                settings.agent_run
            )));
        }
        if settings.slow_seconds > 0 {
            if let Some(&last) = self.posted_at.get(&(id, from.clone())) {
                let due = last + i64::from(settings.slow_seconds) * 1000;
                if due > now {
                    let wait = u64::try_from(due - now).unwrap_or(0);
                    return Err(ProtocolError::retry_after(
                        std::time::Duration::from_millis(wait),
                        format!(
                            "#{name} is in slow mode: one message every {}s per agent; retry in {}",
                            settings.slow_seconds,
                            duration_in_words(wait)
                        ),
                    ));
                }
            }
        }
        if settings.reply_mode == ReplyMode::Mention && !self.may_answer(id, settings, from) {
            return Err(ProtocolError::floor_closed(format!(
                "#{name} answers mentions only: post when someone mentions @{} (or a person gives you the floor)",
                from.session
            )));
        }
        Ok(())
    }

    /// In a `mention` channel: the agent holds the floor, or was mentioned since it last
    /// posted.
    pub fn may_answer(&self, id: ChannelId, settings: &Settings, from: &SessionPath) -> bool {
        if settings
            .floor
            .as_deref()
            .is_some_and(|f| from.answers_to(f))
        {
            return true;
        }
        let since = self.posted_seq(id, from);
        self.mentions.get(&id).is_some_and(|targets| {
            targets
                .iter()
                .any(|(target, &seq)| seq > since && from.answers_to(target))
        })
    }

    /// The seq of an agent session's last post in a `mention` channel, as remembered (0 when
    /// not).
    pub fn posted_seq(&self, id: ChannelId, from: &SessionPath) -> u64 {
        self.posted_seq
            .get(&(id, from.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// Remembers a stored message.
    pub fn record(
        &mut self,
        id: ChannelId,
        settings: &Settings,
        (from, kind): (&SessionPath, SessionKind),
        (seq, text): (u64, &str),
        now: i64,
    ) {
        if kind == SessionKind::Agent {
            if settings.slow_seconds > 0 {
                if self.posted_at.len() >= MAX_REMEMBERED_POSTERS {
                    let horizon = now - i64::from(crate::net::protocol::MAX_SLOW_SECONDS) * 1000;
                    self.posted_at.retain(|_, &mut at| at > horizon);
                    if self.posted_at.len() >= MAX_REMEMBERED_POSTERS {
                        self.posted_at.clear();
                    }
                }
                self.posted_at.insert((id, from.clone()), now);
            }
            if settings.reply_mode == ReplyMode::Mention {
                if self.posted_seq.len() >= MAX_REMEMBERED_POSTERS {
                    self.posted_seq.clear();
                }
                self.posted_seq.insert((id, from.clone()), seq);
            }
        }
        // Only a person's mention opens the floor: agents mentioning each other would loop.
        if settings.reply_mode == ReplyMode::Mention && kind == SessionKind::Human {
            self.record_mentions(id, seq, text);
        }
    }

    /// Remembers whom a person's message `seq` in a `mention` channel mentions.
    pub fn record_mentions(&mut self, id: ChannelId, seq: u64, text: &str) {
        for target in mentions_in(text) {
            if self.mention_count >= MAX_MENTIONS {
                self.mentions.clear();
                self.mention_count = 0;
            }
            let targets = self.mentions.entry(id).or_default();
            if targets.len() >= MAX_MENTIONS_PER_CHANNEL && !targets.contains_key(&target) {
                if let Some(oldest) = targets
                    .iter()
                    .min_by_key(|(_, seq)| **seq)
                    .map(|(t, _)| t.clone())
                {
                    targets.remove(&oldest);
                    self.mention_count -= 1;
                }
            }
            if targets.insert(target, seq).is_none() {
                self.mention_count += 1;
            }
        }
    }

    /// Forgets what mention mode remembers of a channel that left it.
    pub fn leave_mention_mode(&mut self, id: ChannelId) {
        if let Some(targets) = self.mentions.remove(&id) {
            self.mention_count -= targets.len();
        }
        self.posted_seq.retain(|(channel, _), _| *channel != id);
    }

    /// Forgets a deleted channel.
    pub fn forget(&mut self, id: ChannelId) {
        self.leave_mention_mode(id);
        self.posted_at.retain(|(channel, _), _| *channel != id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::protocol::ErrorCode;

    fn path(p: &str) -> SessionPath {
        SessionPath::parse(p).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            agent_turns: 0,
            agent_run: 0,
            reply_mode: ReplyMode::Open,
            slow_seconds: 0,
            floor: None,
        }
    }

    fn ops() -> Name {
        Name::channel("ops").unwrap()
    }

    #[test]
    fn the_turn_budget_closes_the_floor_until_the_run_is_reset() {
        let brakes = Brakes::default();
        let spent = Settings {
            agent_turns: 20,
            agent_run: 20,
            ..settings()
        };
        let refused = brakes
            .check((1, &ops()), &spent, &path("a/m/x"), 0)
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::FloorClosed);
        assert_eq!(
            refused.message,
            "#ops is waiting for a person: 20 agent messages in a row"
        );
        let unlimited = Settings {
            agent_turns: 0,
            agent_run: 500,
            ..settings()
        };
        brakes
            .check((1, &ops()), &unlimited, &path("a/m/x"), 0)
            .unwrap();
    }

    #[test]
    fn slow_mode_spaces_each_agent_session() {
        let mut brakes = Brakes::default();
        let slow = Settings {
            slow_seconds: 30,
            ..settings()
        };
        let (agent, other) = (path("a/m/x"), path("a/m/y"));
        brakes.check((1, &ops()), &slow, &agent, 0).unwrap();
        brakes.record(1, &slow, (&agent, SessionKind::Agent), (1, "hi"), 0);
        let refused = brakes
            .check((1, &ops()), &slow, &agent, 18_000)
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after_ms, Some(12_000));
        assert!(
            refused.message.contains("retry in 12s"),
            "{}",
            refused.message
        );
        brakes.check((1, &ops()), &slow, &other, 18_000).unwrap();
        brakes.check((2, &ops()), &slow, &agent, 18_000).unwrap();
        brakes.check((1, &ops()), &slow, &agent, 30_000).unwrap();
    }

    #[test]
    fn mention_mode_lets_an_agent_answer_once_per_mention_or_while_it_holds_the_floor() {
        let mut brakes = Brakes::default();
        let mention = Settings {
            reply_mode: ReplyMode::Mention,
            ..settings()
        };
        let (agent, person) = (path("bob/laptop/claude"), path("alice/desk/tui"));
        let refused = brakes.check((1, &ops()), &mention, &agent, 0).unwrap_err();
        assert_eq!(refused.code, ErrorCode::FloorClosed);
        brakes.record(
            1,
            &mention,
            (&person, SessionKind::Human),
            (1, "@claude look"),
            0,
        );
        brakes.check((1, &ops()), &mention, &agent, 0).unwrap();
        brakes.record(1, &mention, (&agent, SessionKind::Agent), (2, "done"), 0);
        assert!(brakes.check((1, &ops()), &mention, &agent, 0).is_err());
        brakes.record(
            1,
            &mention,
            (&person, SessionKind::Human),
            (3, "@bob again"),
            0,
        );
        brakes.check((1, &ops()), &mention, &agent, 0).unwrap();
        brakes.record(1, &mention, (&agent, SessionKind::Agent), (4, "ok"), 0);
        // An agent's mention of another agent opens nothing.
        let other = path("carol/laptop/helper");
        brakes.record(
            1,
            &mention,
            (&agent, SessionKind::Agent),
            (5, "@helper go"),
            0,
        );
        assert!(brakes.check((1, &ops()), &mention, &other, 0).is_err());
        let floor = Settings {
            floor: Some("bob/laptop/claude".into()),
            ..mention
        };
        brakes.check((1, &ops()), &floor, &agent, 0).unwrap();
        assert!(
            brakes
                .check((1, &ops()), &floor, &path("carol/laptop/other"), 0)
                .is_err()
        );
    }

    #[test]
    fn remembered_mentions_stay_bounded() {
        let mut brakes = Brakes::default();
        let mention = Settings {
            reply_mode: ReplyMode::Mention,
            ..settings()
        };
        let person = path("alice/desk/tui");
        for seq in 0..(MAX_MENTIONS_PER_CHANNEL as u64 + 50) {
            let text = format!("@agent{seq}");
            brakes.record(
                1,
                &mention,
                (&person, SessionKind::Human),
                (seq + 1, &text),
                0,
            );
        }
        assert_eq!(brakes.mentions[&1].len(), MAX_MENTIONS_PER_CHANNEL);
        let newest = format!("agent{}", MAX_MENTIONS_PER_CHANNEL + 49);
        assert!(brakes.mentions[&1].contains_key(&newest));
        assert!(!brakes.mentions[&1].contains_key("agent0"));
        assert_eq!(brakes.mention_count, MAX_MENTIONS_PER_CHANNEL);
        brakes.leave_mention_mode(1);
        assert_eq!(brakes.mention_count, 0);
    }
}
