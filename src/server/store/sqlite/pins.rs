//! Pinned messages (schema V7): pinned and unpinned by the channel's moderators, gone with
//! their message, listed in the channel's details.

use rusqlite::params;

use super::{Db, internal, name_from};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{MAX_PINS, Pin, ProtocolError};
use crate::server::store::acts::may_pin;
use crate::server::store::{ChannelId, as_sql_seq, now_ms};

impl Db {
    /// Pins message `seq` of the channel, by `by` (pinning it again changes nothing).
    pub(super) fn pin(
        &mut self,
        (id, channel): (ChannelId, &Name),
        seq: u64,
        by: &Name,
    ) -> Result<(), ProtocolError> {
        let at = as_sql_seq(seq);
        let (pinnable, pins): (bool, i64) = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE channel_id = ?1 AND seq = ?2
                                AND event IS NULL AND deleted = 0),
                        (SELECT count(*) FROM pins WHERE channel_id = ?1)",
                params![id, at],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(internal)?;
        may_pin(channel, seq, pinnable, pins)?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO pins (channel_id, seq, pinned_by, ts) VALUES (?1, ?2, ?3, ?4)",
                params![id, at, by.as_str(), now_ms()],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Unpins message `seq`; whether it was pinned.
    pub(super) fn unpin(&mut self, id: ChannelId, seq: u64) -> Result<bool, ProtocolError> {
        let gone = self
            .conn
            .execute(
                "DELETE FROM pins WHERE channel_id = ?1 AND seq = ?2",
                params![id, as_sql_seq(seq)],
            )
            .map_err(internal)?;
        Ok(gone > 0)
    }

    /// The channel's pins, newest pin first.
    pub(super) fn pins(&mut self, id: ChannelId) -> Result<Vec<Pin>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.seq, m.sender_path, m.body, p.pinned_by FROM pins p
                 JOIN messages m ON m.channel_id = p.channel_id AND m.seq = p.seq
                 WHERE p.channel_id = ?1 ORDER BY p.ts DESC, p.seq DESC LIMIT ?2",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map(params![id, MAX_PINS as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(internal)?;
        let mut pins = Vec::new();
        for row in rows {
            let (seq, from, text, by) = row.map_err(internal)?;
            let from =
                SessionPath::parse(&from).map_err(|e| ProtocolError::internal(e.to_string()))?;
            let seq = u64::try_from(seq).unwrap_or(0);
            pins.push(Pin::of(seq, from, &text, name_from(by)?));
        }
        Ok(pins)
    }
}
