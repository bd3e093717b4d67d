//! What the room's governance means for the agent: moderation acts in its channels (it may
//! have been removed, muted, given the floor; a channel may have been renamed) and the floor
//! the server closes to it when a channel waits for a person. The agent has no moderation
//! tools: it only follows what people decide. What a notice says is `core::moderation_notice`;
//! how the wait holds messages is `gate::Floor`.

use std::sync::Arc;

use crate::net::protocol::{Autonomy, ChannelAct, ModerationEvent};

use super::core::{Inbound, moderation_notice};
use super::gate::Floor;
use super::{Agent, Effect, Mark, Place};

impl Agent {
    /// Keeps the agent's channels true to a moderation act on server `server` (the link
    /// already re-keyed or dropped the channel) and tells the model about acts that concern
    /// it.
    pub(super) fn on_moderation(self: &Arc<Self>, server: usize, event: ModerationEvent) -> Effect {
        let me = &self.conn(server).me;
        let mut place = Place {
            server,
            channel: event.channel.clone(),
        };
        let (held_floor, level) = {
            let mut state = self.lock();
            let held_floor = state
                .channels
                .get(&place)
                .is_some_and(|mark| mark.holds_floor);
            if event.removes(me) {
                state.channels.remove(&place);
            }
            match &event.act {
                ChannelAct::Rename { name } => {
                    let renamed = Place {
                        server,
                        channel: name.clone(),
                    };
                    if let Some(mark) = state.channels.remove(&place) {
                        state.channels.insert(renamed.clone(), mark);
                    }
                    state.levels.rename(&place.channel, name);
                    place = renamed;
                }
                ChannelAct::Floor { to } => {
                    if let Some(mark) = state.channels.get_mut(&place) {
                        mark.holds_floor = to.as_deref().is_some_and(|to| me.answers_to(to));
                        if mark.holds_floor {
                            mark.floor.open();
                        }
                    }
                }
                _ => {}
            }
            (held_floor, state.levels.channel(&place.channel))
        };
        if matches!(event.act, ChannelAct::Rename { .. }) {
            // The owner's TUI shows levels by channel name.
            let agent = self.clone();
            tokio::spawn(async move { agent.report_autonomy(None).await });
        }
        let Some(text) = moderation_notice(&event, me, held_floor) else {
            return Effect::None;
        };
        if self.gated && level == Autonomy::Mute {
            return Effect::None;
        }
        Effect::Deliver(
            self.origin(server),
            Inbound::Notice {
                channel: place.channel,
                by: event.by,
                text,
                reason: event.reason,
            },
        )
    }

    /// Changes a joined channel's floor (the server refused a post with `floor_closed`, or
    /// took one).
    pub(super) fn update_floor(&self, place: &Place, change: impl FnOnce(&mut Floor)) {
        if let Some(mark) = self.lock().channels.get_mut(place) {
            change(&mut mark.floor);
        }
    }

    /// A joined channel's bookkeeping.
    pub(super) fn mark(&self, place: &Place) -> Option<Mark> {
        self.lock().channels.get(place).copied()
    }

    /// Remembers whether this agent holds a channel's floor, as the server last described it.
    pub(super) fn set_holds_floor(&self, place: &Place, holds: bool) {
        if let Some(mark) = self.lock().channels.get_mut(place) {
            mark.holds_floor = holds;
        }
    }
}
