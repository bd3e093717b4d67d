//! The audit log (who did what to whom, when and why), server-wide bans, and the user list
//! admins read, as rows. Who may read which entries is decided in `moderation.rs`.

use rusqlite::{OptionalExtension, params};

use super::{Db, internal, name_from};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{AuditEntry, ProtocolError, UserInfo};
use crate::server::store::{AuditRecord, ChannelId, ServerBan, UserId};

/// Whose entries a reader may see.
#[derive(Debug, Clone, Copy)]
pub enum AuditScope {
    /// One channel's (its moderators, owner, or an admin).
    Channel(ChannelId),
    /// Everything (admins).
    All,
    /// The reader's own acts and those in channels they moderate or own.
    Reader(UserId),
}

impl Db {
    pub fn record_audit(&mut self, record: &AuditRecord) -> Result<(), ProtocolError> {
        insert_audit(&self.conn, record)
    }

    /// A page of the log, newest first, of entries older than `before`; and whether more
    /// follow.
    pub fn audit_entries(
        &mut self,
        scope: AuditScope,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, bool), ProtocolError> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let columns =
            "SELECT id, ts, actor_path, action, channel_name, target, detail, reason FROM audit";
        let (sql, key) = match scope {
            AuditScope::Channel(id) => (
                format!("{columns} WHERE channel_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"),
                id,
            ),
            AuditScope::All => (
                format!("{columns} WHERE ?1 = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"),
                0,
            ),
            AuditScope::Reader(user) => (
                format!(
                    "{columns} WHERE (actor_id = ?1 OR channel_id IN
                        (SELECT channel_id FROM memberships WHERE user_id = ?1 AND role != 'member'))
                     AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                user,
            ),
        };
        let mut stmt = self.conn.prepare_cached(&sql).map_err(internal)?;
        let rows = stmt
            .query_map(params![key, before, i64::from(limit) + 1], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(internal)?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, ts, by, action, channel, target, detail, reason) = row.map_err(internal)?;
            entries.push(AuditEntry {
                id: id as u64,
                ts,
                by: SessionPath::parse(&by).map_err(|e| ProtocolError::internal(e.to_string()))?,
                action,
                channel: channel.map(name_from).transpose()?,
                target,
                detail,
                reason,
            });
        }
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        Ok((entries, more))
    }

    /// Drops audit entries older than `cutoff_ms`, with the messages of that age.
    pub fn purge_audit_older_than(&mut self, cutoff_ms: i64) -> Result<usize, ProtocolError> {
        self.conn
            .execute("DELETE FROM audit WHERE ts < ?1", [cutoff_ms])
            .map_err(internal)
    }

    /// The user's server ban, if one is in force at `now`.
    pub fn server_ban(
        &mut self,
        user: UserId,
        now: i64,
    ) -> Result<Option<ServerBan>, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT banned_until, ban_reason FROM users WHERE id = ?1 AND banned_until > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![user, now], |r| {
                    Ok(ServerBan {
                        until: r.get(0)?,
                        reason: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(internal)
    }

    /// Bans a user from the server until `until`, or lifts the ban with `None`.
    pub fn set_server_ban(
        &mut self,
        user: UserId,
        ban: Option<&ServerBan>,
    ) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE users SET banned_until = ?1, ban_reason = ?2 WHERE id = ?3",
                params![
                    ban.map(|b| b.until),
                    ban.and_then(|b| b.reason.as_deref()),
                    user
                ],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// One page of users by name after `after` (live sessions and admin flags are the
    /// caller's to fill in); and whether more follow.
    pub fn list_users(
        &mut self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> Result<(Vec<(UserId, UserInfo)>, bool), ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.id, u.name, u.created_at,
                        (SELECT COUNT(*) FROM machines m WHERE m.user_id = u.id),
                        CASE WHEN u.banned_until > ?3 THEN u.banned_until END,
                        CASE WHEN u.banned_until > ?3 THEN u.ban_reason END
                 FROM users u WHERE u.name > ?1 ORDER BY u.name LIMIT ?2",
            )
            .map_err(internal)?;
        let after = after.map(Name::as_str).unwrap_or("");
        let rows = stmt
            .query_map(params![after, i64::from(limit) + 1, now], |r| {
                Ok((
                    r.get::<_, UserId>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(internal)?;
        let mut users = Vec::new();
        for row in rows {
            let (id, name, created, machines, banned_until, ban_reason) = row.map_err(internal)?;
            users.push((
                id,
                UserInfo {
                    name: name_from(name)?,
                    created,
                    machines,
                    online: 0,
                    admin: false,
                    banned_until,
                    ban_reason,
                },
            ));
        }
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        Ok((users, more))
    }
}

/// Writes one audit entry on `conn` (inside whatever transaction the caller holds).
pub(super) fn insert_audit(
    conn: &rusqlite::Connection,
    record: &AuditRecord,
) -> Result<(), ProtocolError> {
    let (channel_id, channel_name) = match &record.channel {
        Some((id, name)) => (Some(*id), Some(name.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(
                "INSERT INTO audit (ts, actor_id, actor_path, action, channel_id, channel_name, target, detail, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    record.ts,
                    record.actor_id,
                    record.by.to_string(),
                    record.action,
                    channel_id,
                    channel_name,
                    record.target,
                    record.detail,
                    record.reason
                ])
            })
            .map_err(internal)?;
    Ok(())
}
