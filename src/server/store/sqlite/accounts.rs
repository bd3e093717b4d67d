//! Users and their machines: registration, the keys that sign in, and enrolling a new machine
//! with a one-time code made on an enrolled one (so nobody can enroll a key they do not hold).

use rusqlite::{OptionalExtension, params};

use super::{Db, internal, name_from};
use crate::net::identity::format_public_key;
use crate::net::names::Name;
use crate::net::protocol::{MachineInfo, ProtocolError};
use crate::server::store::refusals;
use crate::server::store::{Account, ServerBan, Signer, UserId, now_ms};

/// Refuses another machine for a user who has `MAX_MACHINES`.
fn too_many_machines(conn: &rusqlite::Connection, user_id: UserId) -> Result<(), ProtocolError> {
    let machines: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM machines WHERE user_id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .map_err(internal)?;
    refusals::machines_cap(machines)
}

impl Db {
    /// The machine `key` signs in as: its machine key, or its human key.
    pub fn account_by_key(&mut self, key: &[u8]) -> Result<Option<Account>, ProtocolError> {
        type Row = (
            UserId,
            String,
            String,
            bool,
            bool,
            Option<i64>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT u.id, u.name, m.name,
                        EXISTS(SELECT 1 FROM machines h WHERE h.user_id = u.id AND h.human_key IS NOT NULL),
                        m.human_key IS ?1,
                        CASE WHEN u.banned_until > ?2 THEN u.banned_until END, u.ban_reason
                 FROM machines m JOIN users u ON u.id = m.user_id
                 WHERE m.public_key = ?1 OR m.human_key = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![key, now_ms()], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .optional()
            })
            .map_err(internal)?;
        row.map(
            |(user_id, user, machine, uses_human_keys, is_human_key, banned_until, reason)| {
                Ok(Account {
                    user_id,
                    user: name_from(user)?,
                    machine: name_from(machine)?,
                    uses_human_keys,
                    is_human_key,
                    banned: banned_until.map(|until| ServerBan { until, reason }),
                })
            },
        )
        .transpose()
    }

    /// Whether any machine of the user has a human key: then the account's keys are managed,
    /// and its people sign in, only with human keys.
    pub fn uses_human_keys(&mut self, user_id: UserId) -> Result<bool, ProtocolError> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE user_id = ?1 AND human_key IS NOT NULL)",
                [user_id],
                |r| r.get(0),
            )
            .map_err(internal)
    }

    /// Refuses what only a person may do once the account uses human keys.
    fn require_person(
        &mut self,
        user_id: UserId,
        signer: Signer,
        what: &str,
    ) -> Result<(), ProtocolError> {
        if signer == Signer::MachineKey && self.uses_human_keys(user_id)? {
            return Err(ProtocolError::forbidden(format!(
                "this account uses human keys: {what} takes a session signed in with one (`conclave tui`)"
            )));
        }
        Ok(())
    }

    /// Registers `key` as the human key of `user_id`'s `machine`, signed in as `signer_key`.
    /// Replacing a human key takes a session signed in with that very key. A machine's first
    /// one may come from its machine key while the account has no human key yet, or within
    /// `ENROLL_WINDOW_MS` of the machine's enrollment (which, once the account uses human keys,
    /// only a person could have invited): an agent holding a machine key cannot make a key of
    /// its own count as a person's.
    pub fn set_human_key(
        &mut self,
        user_id: UserId,
        machine: &Name,
        key: &[u8],
        signer_key: &[u8],
    ) -> Result<(), ProtocolError> {
        let uses_human_keys = self.uses_human_keys(user_id)?;
        let tx = self.conn.transaction().map_err(internal)?;
        let row: Option<(Option<Vec<u8>>, i64)> = tx
            .query_row(
                "SELECT human_key, created_at FROM machines WHERE user_id = ?1 AND name = ?2",
                params![user_id, machine.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)?;
        let Some((current, enrolled_at)) = row else {
            return Err(ProtocolError::not_found(format!("no machine `{machine}`")));
        };
        refusals::may_set_human_key(
            current.as_deref(),
            signer_key,
            uses_human_keys,
            enrolled_at,
            now_ms(),
        )?;
        let in_use: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE public_key = ?1 OR human_key = ?1)",
                [key],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if in_use {
            return Err(ProtocolError::conflict("that key is already in use here"));
        }
        tx.execute(
            "UPDATE machines SET human_key = ?3 WHERE user_id = ?1 AND name = ?2",
            params![user_id, machine.as_str(), key],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)
    }

    /// Claims `user` and enrolls `key` as its machine. Registering again with the same key
    /// and name is a no-op, so `register` can be re-run safely.
    pub fn register(
        &mut self,
        user: &Name,
        machine: &Name,
        key: &[u8],
    ) -> Result<Account, ProtocolError> {
        if let Some(account) = self.account_by_key(key)? {
            if &account.user == user {
                return Ok(account);
            }
            return Err(ProtocolError::conflict(format!(
                "this key is already registered as {}/{}",
                account.user, account.machine
            )));
        }
        let tx = self.conn.transaction().map_err(internal)?;
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
                [user.as_str()],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if taken {
            return Err(ProtocolError::conflict(format!(
                "the user name `{user}` is taken; enroll this machine from one already enrolled \
                 (`conclave machine invite NAME` there) or pick another name"
            )));
        }
        let now = now_ms();
        tx.execute(
            "INSERT INTO users (name, created_at) VALUES (?1, ?2)",
            params![user.as_str(), now],
        )
        .map_err(internal)?;
        let user_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO machines (user_id, name, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, machine.as_str(), key, now],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(Account {
            user_id,
            user: user.clone(),
            machine: machine.clone(),
            uses_human_keys: false,
            is_human_key: false,
            banned: None,
        })
    }

    fn add_machine(
        &mut self,
        user_id: UserId,
        machine: &Name,
        key: &[u8],
    ) -> Result<(), ProtocolError> {
        too_many_machines(&self.conn, user_id)?;
        if let Some(account) = self.account_by_key(key)? {
            return Err(ProtocolError::conflict(format!(
                "this key is already enrolled as {}/{}",
                account.user, account.machine
            )));
        }
        let inserted = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO machines (user_id, name, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user_id, machine.as_str(), key, now_ms()],
            )
            .map_err(internal)?;
        if inserted == 0 {
            return Err(ProtocolError::conflict(format!(
                "you already have a machine named `{machine}`"
            )));
        }
        Ok(())
    }

    pub fn list_machines(&mut self, user_id: UserId) -> Result<Vec<MachineInfo>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, public_key, created_at FROM machines WHERE user_id = ?1 ORDER BY name")
            .map_err(internal)?;
        let rows = stmt
            .query_map([user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
            })
            .map_err(internal)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, key, added) = row.map_err(internal)?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| ProtocolError::internal("stored key has the wrong length"))?;
            out.push(MachineInfo {
                name: name_from(name)?,
                public_key: format_public_key(&key),
                added,
            });
        }
        Ok(out)
    }

    /// Removes a machine; its key stops working at once. The last machine cannot go (the
    /// account would be unreachable).
    /// Removes a machine, and every open invite of the user with it (a stolen machine's
    /// codes must not outlive it).
    pub fn remove_machine(
        &mut self,
        user_id: UserId,
        machine: &Name,
        signer: Signer,
    ) -> Result<(), ProtocolError> {
        self.require_person(user_id, signer, "removing a machine")?;
        let count: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM machines WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .map_err(internal)?;
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE user_id = ?1 AND name = ?2)",
                params![user_id, machine.as_str()],
                |r| r.get(0),
            )
            .map_err(internal)?;
        refusals::may_remove_machine(machine, exists, count)?;
        self.conn
            .execute(
                "DELETE FROM machines WHERE user_id = ?1 AND name = ?2",
                params![user_id, machine.as_str()],
            )
            .map_err(internal)?;
        self.conn
            .execute("DELETE FROM machine_invites WHERE user_id = ?1", [user_id])
            .map_err(internal)?;
        Ok(())
    }

    /// Records a one-time `code` that lets a new machine enroll its key under `user_id` as
    /// `machine`, until `expires_at`.
    pub fn invite_machine(
        &mut self,
        user_id: UserId,
        machine: &Name,
        code: &str,
        expires_at: i64,
        signer: Signer,
    ) -> Result<(), ProtocolError> {
        self.require_person(user_id, signer, "inviting a machine")?;
        let tx = self.conn.transaction().map_err(internal)?;
        tx.execute(
            "DELETE FROM machine_invites WHERE expires_at <= ?1",
            [now_ms()],
        )
        .map_err(internal)?;
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM machines WHERE user_id = ?1 AND name = ?2)",
                params![user_id, machine.as_str()],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if taken {
            return Err(ProtocolError::conflict(format!(
                "you already have a machine named `{machine}`"
            )));
        }
        too_many_machines(&tx, user_id)?;
        let open: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM machine_invites WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .map_err(internal)?;
        refusals::machine_invites_cap(open)?;
        tx.execute(
            "INSERT INTO machine_invites (code, user_id, machine, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![code, user_id, machine.as_str(), expires_at],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)
    }

    /// Uses up an invite `code` to enroll `key` (whose possession the caller has checked).
    pub fn enroll(&mut self, code: &str, key: &[u8]) -> Result<Account, ProtocolError> {
        let invite: Option<(UserId, String)> = self
            .conn
            .query_row(
                "SELECT user_id, machine FROM machine_invites WHERE code = ?1 AND expires_at > ?2",
                params![code, now_ms()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)?;
        let Some((user_id, machine)) = invite else {
            return Err(ProtocolError::forbidden(
                "that enrollment code is unknown, used or expired: make a new one with `conclave machine invite NAME` on an enrolled machine",
            ));
        };
        let machine = name_from(machine)?;
        // Only one thread writes, so nothing comes between: a refused key keeps the code.
        self.add_machine(user_id, &machine, key)?;
        self.conn
            .execute("DELETE FROM machine_invites WHERE code = ?1", [code])
            .map_err(internal)?;
        self.account_by_key(key)?
            .ok_or_else(|| ProtocolError::internal("the enrolled key was not found"))
    }
}
