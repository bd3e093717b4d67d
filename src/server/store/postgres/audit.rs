//! The audit log (who did what to whom, when and why), server-wide bans, and the user list
//! admins read, as rows. Who may read which entries is decided in `moderation.rs`.

use super::{Db, name_from};
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

impl Db<'_> {
    pub async fn record_audit(self, record: &AuditRecord) -> Result<(), ProtocolError> {
        let (channel_id, channel_name) = match &record.channel {
            Some((id, name)) => (Some(*id), Some(name.as_str())),
            None => (None, None),
        };
        self.execute(
            "INSERT INTO audit (ts, actor_id, actor_path, action, channel_id, channel_name, target, detail, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &record.ts,
                &record.actor_id,
                &record.by.to_string(),
                &record.action,
                &channel_id,
                &channel_name,
                &record.target,
                &record.detail,
                &record.reason,
            ],
        )
        .await?;
        Ok(())
    }

    /// A page of the log, newest first, of entries older than `before`; and whether more
    /// follow.
    pub async fn audit_entries(
        self,
        scope: AuditScope,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, bool), ProtocolError> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let columns =
            "SELECT id, ts, actor_path, action, channel_name, target, detail, reason FROM audit";
        let (sql, key) = match scope {
            AuditScope::Channel(id) => (
                format!("{columns} WHERE channel_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                id,
            ),
            AuditScope::All => (
                format!("{columns} WHERE $1::BIGINT IS NOT NULL AND id < $2 ORDER BY id DESC LIMIT $3"),
                0,
            ),
            AuditScope::Reader(user) => (
                format!(
                    "{columns} WHERE (actor_id = $1 OR channel_id IN
                        (SELECT channel_id FROM memberships WHERE user_id = $1 AND role != 'member'))
                     AND id < $2 ORDER BY id DESC LIMIT $3"
                ),
                user,
            ),
        };
        let rows = self
            .query(&sql, &[&key, &before, &(i64::from(limit) + 1)])
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let by: &str = row.get(2);
            let channel: Option<String> = row.get(4);
            entries.push(AuditEntry {
                id: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                ts: row.get(1),
                by: SessionPath::parse(by).map_err(|e| ProtocolError::internal(e.to_string()))?,
                action: row.get(3),
                channel: channel.map(name_from).transpose()?,
                target: row.get(5),
                detail: row.get(6),
                reason: row.get(7),
            });
        }
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        Ok((entries, more))
    }

    /// The user's server ban, if one is in force at `now`.
    pub async fn server_ban(
        self,
        user: UserId,
        now: i64,
    ) -> Result<Option<ServerBan>, ProtocolError> {
        Ok(self
            .query_opt(
                "SELECT banned_until, ban_reason FROM users WHERE id = $1 AND banned_until > $2",
                &[&user, &now],
            )
            .await?
            .map(|r| ServerBan {
                until: r.get(0),
                reason: r.get(1),
            }))
    }

    /// Bans a user from the server until `until`, or lifts the ban with `None`.
    pub async fn set_server_ban(
        self,
        user: UserId,
        ban: Option<&ServerBan>,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE users SET banned_until = $1, ban_reason = $2 WHERE id = $3",
            &[
                &ban.map(|b| b.until),
                &ban.and_then(|b| b.reason.as_deref()),
                &user,
            ],
        )
        .await?;
        Ok(())
    }

    /// One page of users by name after `after` (live sessions and admin flags are the
    /// caller's to fill in); and whether more follow.
    pub async fn list_users(
        self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> Result<(Vec<(UserId, UserInfo)>, bool), ProtocolError> {
        let after = after.map(Name::as_str).unwrap_or("");
        let rows = self
            .query(
                "SELECT u.id, u.name, u.created_at,
                        (SELECT COUNT(*) FROM machines m WHERE m.user_id = u.id),
                        CASE WHEN u.banned_until > $3 THEN u.banned_until END,
                        CASE WHEN u.banned_until > $3 THEN u.ban_reason END
                 FROM users u WHERE u.name > $1 ORDER BY u.name LIMIT $2",
                &[&after, &(i64::from(limit) + 1), &now],
            )
            .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            users.push((
                row.get(0),
                UserInfo {
                    name: name_from(row.get(1))?,
                    created: row.get(2),
                    machines: u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX),
                    online: 0,
                    admin: false,
                    banned_until: row.get(4),
                    ban_reason: row.get(5),
                },
            ));
        }
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        Ok((users, more))
    }
}
