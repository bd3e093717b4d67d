//! The other instances' sessions as this one has heard of them, room by room, so that when an
//! instance falls silent its sessions can be announced offline here: nobody else will.

use std::collections::HashMap;

use bytes::Bytes;

use crate::net::codec;
use crate::net::names::SessionPath;
use crate::net::protocol::{PresenceChange, PresenceEvent, ServerFrame};
use crate::server::store::ChannelId;

/// Per instance, the sessions there receiving each room, as their last presence event said.
#[derive(Default)]
pub struct RemotePresence {
    instances: HashMap<String, HashMap<(ChannelId, SessionPath), PresenceEvent>>,
}

impl RemotePresence {
    /// Remembers what a presence event of `instance` says.
    pub fn heard(&mut self, instance: &str, channel: ChannelId, event: &PresenceEvent) {
        let key = (channel, event.session.path.clone());
        match event.change {
            PresenceChange::Joined | PresenceChange::Online => {
                self.instances
                    .entry(instance.to_owned())
                    .or_default()
                    .insert(key, event.clone());
            }
            PresenceChange::Left | PresenceChange::Offline => {
                if let Some(sessions) = self.instances.get_mut(instance) {
                    sessions.remove(&key);
                }
            }
        }
    }

    /// Forgets `instance` and returns, per room, the encoded event announcing each of its
    /// sessions there offline.
    pub fn forget(&mut self, instance: &str) -> Vec<(ChannelId, Bytes)> {
        let Some(sessions) = self.instances.remove(instance) else {
            return Vec::new();
        };
        sessions
            .into_iter()
            .filter_map(|((channel, _), mut event)| {
                event.change = PresenceChange::Offline;
                let bytes = codec::encode(&ServerFrame::Presence(event)).ok()?;
                Some((channel, Bytes::from(bytes)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::names::Name;
    use crate::net::protocol::{SessionInfo, SessionKind};

    fn event(path: &str, change: PresenceChange) -> PresenceEvent {
        PresenceEvent {
            channel: Name::channel("general").unwrap(),
            session: SessionInfo {
                path: SessionPath::parse(path).unwrap(),
                kind: SessionKind::Agent,
            },
            change,
        }
    }

    #[test]
    fn a_silent_instance_s_receiving_sessions_go_offline_and_no_others() {
        let mut presence = RemotePresence::default();
        presence.heard("b", 1, &event("bob/box/bot", PresenceChange::Joined));
        presence.heard("b", 1, &event("bob/box/gone", PresenceChange::Online));
        presence.heard("b", 1, &event("bob/box/gone", PresenceChange::Offline));
        presence.heard("c", 1, &event("carol/box/bot", PresenceChange::Online));
        let announced = presence.forget("b");
        assert_eq!(announced.len(), 1);
        let (channel, bytes) = &announced[0];
        assert_eq!(*channel, 1);
        let ServerFrame::Presence(said) = codec::decode(bytes).unwrap() else {
            panic!("not a presence event");
        };
        assert_eq!(said, event("bob/box/bot", PresenceChange::Offline));
        assert!(presence.forget("b").is_empty(), "told twice");
        assert_eq!(presence.forget("c").len(), 1);
    }
}
