//! Users and their machines: registration, the keys that sign in, and enrolling a new machine
//! with a one-time code made on an enrolled one (so nobody can enroll a key they do not hold).
//! Names and keys are claimed with `ON CONFLICT DO NOTHING`, so two instances racing for one
//! get one winner and one refusal, never an error.

use super::{Db, name_from};
use crate::net::identity::format_public_key;
use crate::net::names::Name;
use crate::net::protocol::{MachineInfo, ProtocolError};
use crate::server::store::refusals;
use crate::server::store::{Account, ServerBan, Signer, UserId, now_ms};

impl Db<'_> {
    /// Locks the user's row until the unit ends: caps counted under it hold across instances.
    pub(super) async fn lock_user(self, user_id: UserId) -> Result<(), ProtocolError> {
        self.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await?;
        Ok(())
    }

    /// Refuses another machine for a user who has `MAX_MACHINES`.
    async fn too_many_machines(self, user_id: UserId) -> Result<(), ProtocolError> {
        let machines: i64 = self
            .query_one(
                "SELECT COUNT(*) FROM machines WHERE user_id = $1",
                &[&user_id],
            )
            .await?
            .get(0);
        refusals::machines_cap(machines)
    }

    /// The machine `key` signs in as: its machine key, or its human key.
    pub async fn account_by_key(self, key: &[u8]) -> Result<Option<Account>, ProtocolError> {
        let row = self
            .query_opt(
                "SELECT u.id, u.name, m.name,
                        EXISTS(SELECT 1 FROM machines h WHERE h.user_id = u.id AND h.human_key IS NOT NULL),
                        m.human_key IS NOT DISTINCT FROM $1,
                        CASE WHEN u.banned_until > $2 THEN u.banned_until END, u.ban_reason
                 FROM machines m JOIN users u ON u.id = m.user_id
                 WHERE m.public_key = $1 OR m.human_key = $1",
                &[&key, &now_ms()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let banned_until: Option<i64> = row.get(5);
        Ok(Some(Account {
            user_id: row.get(0),
            user: name_from(row.get(1))?,
            machine: name_from(row.get(2))?,
            uses_human_keys: row.get(3),
            is_human_key: row.get(4),
            banned: banned_until.map(|until| ServerBan {
                until,
                reason: row.get(6),
            }),
        }))
    }

    /// Whether any machine of the user has a human key: then the account's keys are managed,
    /// and its people sign in, only with human keys.
    pub async fn uses_human_keys(self, user_id: UserId) -> Result<bool, ProtocolError> {
        Ok(self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE user_id = $1 AND human_key IS NOT NULL)",
                &[&user_id],
            )
            .await?
            .get(0))
    }

    /// Refuses what only a person may do once the account uses human keys.
    async fn require_person(
        self,
        user_id: UserId,
        signer: Signer,
        what: &str,
    ) -> Result<(), ProtocolError> {
        if signer == Signer::MachineKey && self.uses_human_keys(user_id).await? {
            return Err(ProtocolError::forbidden(format!(
                "this account uses human keys: {what} takes a session signed in with one (`conclave tui`)"
            )));
        }
        Ok(())
    }

    /// See `Store::set_human_key` (and the SQLite store's, whose rules these are).
    pub async fn set_human_key(
        self,
        user_id: UserId,
        machine: &Name,
        key: &[u8],
        signer_key: &[u8],
    ) -> Result<(), ProtocolError> {
        self.lock_user(user_id).await?;
        let uses_human_keys = self.uses_human_keys(user_id).await?;
        let row = self
            .query_opt(
                "SELECT human_key, created_at FROM machines WHERE user_id = $1 AND name = $2",
                &[&user_id, &machine.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Err(ProtocolError::not_found(format!("no machine `{machine}`")));
        };
        let (current, enrolled_at): (Option<Vec<u8>>, i64) = (row.get(0), row.get(1));
        refusals::may_set_human_key(
            current.as_deref(),
            signer_key,
            uses_human_keys,
            enrolled_at,
            now_ms(),
        )?;
        let changed = self
            .execute(
                "UPDATE machines SET human_key = $3 WHERE user_id = $1 AND name = $2
                   AND NOT EXISTS (SELECT 1 FROM machines WHERE public_key = $3 OR human_key = $3)",
                &[&user_id, &machine.as_str(), &key],
            )
            .await?;
        if changed == 0 {
            return Err(ProtocolError::conflict("that key is already in use here"));
        }
        Ok(())
    }

    /// See `Store::register`.
    pub async fn register(
        self,
        user: &Name,
        machine: &Name,
        key: &[u8],
    ) -> Result<Account, ProtocolError> {
        if let Some(account) = self.account_by_key(key).await? {
            if &account.user == user {
                return Ok(account);
            }
            return Err(ProtocolError::conflict(format!(
                "this key is already registered as {}/{}",
                account.user, account.machine
            )));
        }
        let now = now_ms();
        let inserted = self
            .query_opt(
                "INSERT INTO users (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&user.as_str(), &now],
            )
            .await?;
        let Some(inserted) = inserted else {
            return Err(ProtocolError::conflict(format!(
                "the user name `{user}` is taken; enroll this machine from one already enrolled \
                 (`conclave machine invite NAME` there) or pick another name"
            )));
        };
        let user_id: UserId = inserted.get(0);
        let enrolled = self
            .execute(
                "INSERT INTO machines (user_id, name, public_key, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&user_id, &machine.as_str(), &key, &now],
            )
            .await?;
        if enrolled == 0 {
            // Another instance enrolled the key a moment ago; the caller's unit rolls back.
            return Err(ProtocolError::conflict("that key is already in use here"));
        }
        Ok(Account {
            user_id,
            user: user.clone(),
            machine: machine.clone(),
            uses_human_keys: false,
            is_human_key: false,
            banned: None,
        })
    }

    async fn add_machine(
        self,
        user_id: UserId,
        machine: &Name,
        key: &[u8],
    ) -> Result<(), ProtocolError> {
        self.lock_user(user_id).await?;
        self.too_many_machines(user_id).await?;
        if let Some(account) = self.account_by_key(key).await? {
            return Err(ProtocolError::conflict(format!(
                "this key is already enrolled as {}/{}",
                account.user, account.machine
            )));
        }
        let inserted = self
            .execute(
                "INSERT INTO machines (user_id, name, public_key, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&user_id, &machine.as_str(), &key, &now_ms()],
            )
            .await?;
        if inserted == 0 {
            return Err(ProtocolError::conflict(format!(
                "you already have a machine named `{machine}`"
            )));
        }
        Ok(())
    }

    pub async fn list_machines(self, user_id: UserId) -> Result<Vec<MachineInfo>, ProtocolError> {
        let rows = self
            .query(
                "SELECT name, public_key, created_at FROM machines WHERE user_id = $1 ORDER BY name",
                &[&user_id],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: Vec<u8> = row.get(1);
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| ProtocolError::internal("stored key has the wrong length"))?;
            out.push(MachineInfo {
                name: name_from(row.get(0))?,
                public_key: format_public_key(&key),
                added: row.get(2),
            });
        }
        Ok(out)
    }

    /// Removes a machine, and every open invite of the user with it (a stolen machine's
    /// codes must not outlive it). The last machine cannot go.
    pub async fn remove_machine(
        self,
        user_id: UserId,
        machine: &Name,
        signer: Signer,
    ) -> Result<(), ProtocolError> {
        self.require_person(user_id, signer, "removing a machine")
            .await?;
        self.lock_user(user_id).await?;
        let row = self
            .query_one(
                "SELECT COUNT(*), COALESCE(BOOL_OR(name = $2), FALSE) FROM machines WHERE user_id = $1",
                &[&user_id, &machine.as_str()],
            )
            .await?;
        let (count, exists): (i64, bool) = (row.get(0), row.get(1));
        refusals::may_remove_machine(machine, exists, count)?;
        self.execute(
            "DELETE FROM machines WHERE user_id = $1 AND name = $2",
            &[&user_id, &machine.as_str()],
        )
        .await?;
        self.execute(
            "DELETE FROM machine_invites WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        Ok(())
    }

    /// See `Store::invite_machine`.
    pub async fn invite_machine(
        self,
        user_id: UserId,
        machine: &Name,
        code: &str,
        expires_at: i64,
        signer: Signer,
    ) -> Result<(), ProtocolError> {
        self.require_person(user_id, signer, "inviting a machine")
            .await?;
        self.lock_user(user_id).await?;
        self.execute(
            "DELETE FROM machine_invites WHERE expires_at <= $1",
            &[&now_ms()],
        )
        .await?;
        let taken: bool = self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE user_id = $1 AND name = $2)",
                &[&user_id, &machine.as_str()],
            )
            .await?
            .get(0);
        if taken {
            return Err(ProtocolError::conflict(format!(
                "you already have a machine named `{machine}`"
            )));
        }
        self.too_many_machines(user_id).await?;
        let open: i64 = self
            .query_one(
                "SELECT COUNT(*) FROM machine_invites WHERE user_id = $1",
                &[&user_id],
            )
            .await?
            .get(0);
        refusals::machine_invites_cap(open)?;
        self.execute(
            "INSERT INTO machine_invites (code, user_id, machine, expires_at) VALUES ($1, $2, $3, $4)",
            &[&code, &user_id, &machine.as_str(), &expires_at],
        )
        .await?;
        Ok(())
    }

    /// Uses up an invite `code` to enroll `key`. The code is taken in the unit's transaction,
    /// so a refused key (the unit rolls back) keeps it, and two instances cannot both use it.
    pub async fn enroll(self, code: &str, key: &[u8]) -> Result<Account, ProtocolError> {
        let invite = self
            .query_opt(
                "DELETE FROM machine_invites WHERE code = $1 AND expires_at > $2
                 RETURNING user_id, machine",
                &[&code, &now_ms()],
            )
            .await?;
        let Some(invite) = invite else {
            return Err(ProtocolError::forbidden(
                "that enrollment code is unknown, used or expired: make a new one with `conclave machine invite NAME` on an enrolled machine",
            ));
        };
        let user_id: UserId = invite.get(0);
        let machine = name_from(invite.get(1))?;
        self.add_machine(user_id, &machine, key).await?;
        self.account_by_key(key)
            .await?
            .ok_or_else(|| ProtocolError::internal("the enrolled key was not found"))
    }
}
