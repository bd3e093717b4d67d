//! Pinned messages (migration V6): pinned and unpinned by the channel's moderators, gone with
//! their message, listed in the channel's details.

use super::{Db, name_from};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{MAX_PINS, Pin, ProtocolError};
use crate::server::store::acts::may_pin;
use crate::server::store::{ChannelId, as_sql_seq, now_ms};

impl Db<'_> {
    /// Pins message `seq` of the channel, by `by` (pinning it again changes nothing).
    pub(super) async fn pin(
        self,
        (id, channel): (ChannelId, &Name),
        seq: u64,
        by: &Name,
    ) -> Result<(), ProtocolError> {
        let at = as_sql_seq(seq);
        // Pins of one channel go one at a time (across instances too), so the cap holds, and
        // after any delete of the message that locked the channel first.
        self.execute("SELECT 1 FROM channels WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let row = self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE channel_id = $1 AND seq = $2
                                AND event IS NULL AND NOT deleted),
                        (SELECT count(*) FROM pins WHERE channel_id = $1)",
                &[&id, &at],
            )
            .await?;
        may_pin(channel, seq, row.get(0), row.get(1))?;
        self.execute(
            "INSERT INTO pins (channel_id, seq, pinned_by, ts) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&id, &at, &by.as_str(), &now_ms()],
        )
        .await?;
        Ok(())
    }

    /// Unpins message `seq`; whether it was pinned.
    pub(super) async fn unpin(self, id: ChannelId, seq: u64) -> Result<bool, ProtocolError> {
        let gone = self
            .execute(
                "DELETE FROM pins WHERE channel_id = $1 AND seq = $2",
                &[&id, &as_sql_seq(seq)],
            )
            .await?;
        Ok(gone > 0)
    }

    /// The channel's pins, newest pin first.
    pub(super) async fn pins(self, id: ChannelId) -> Result<Vec<Pin>, ProtocolError> {
        let rows = self
            .query(
                "SELECT p.seq, m.sender_path, m.body, p.pinned_by FROM pins p
                 JOIN messages m ON m.channel_id = p.channel_id AND m.seq = p.seq
                 WHERE p.channel_id = $1 ORDER BY p.ts DESC, p.seq DESC LIMIT $2",
                &[&id, &(MAX_PINS as i64)],
            )
            .await?;
        let mut pins = Vec::with_capacity(rows.len());
        for row in rows {
            let from: &str = row.get(1);
            let from =
                SessionPath::parse(from).map_err(|e| ProtocolError::internal(e.to_string()))?;
            let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let text: &str = row.get(2);
            pins.push(Pin::of(seq, from, text, name_from(row.get(3))?));
        }
        Ok(pins)
    }
}
