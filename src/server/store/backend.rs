//! The backend a server runs on: SQLite (embedded, the default) or PostgreSQL (shared by
//! several instances, `serve --store postgres://...`). `Backend` implements `Store` by handing
//! each call to the one it holds, so the request handlers never know which.

use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::Result;

use super::{
    Account, Actor, Answer, Append, AuditRecord, Channel, ChannelId, ChannelInvite, Found,
    HistoryRange, Joining, Moderated, Moderation, NewChannel, Page, PostgresStore, Publish, Purged,
    Search, ServerBan, Signer, SqliteStore, Store, UserId,
};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    AuditEntry, ChannelDetails, ChannelInfo, ChatMessage, InviteInfo, MachineInfo, UserInfo,
};

/// Where a server keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location<'a> {
    /// SQLite in this directory, or in memory with `None`.
    Sqlite(Option<&'a Path>),
    /// The PostgreSQL database at this URL.
    Postgres(&'a str),
}

/// One of the store backends. Cheap to clone, like each of them.
#[derive(Clone)]
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Backend {
    /// Opens the store at `location`; `publish` receives each commit's new messages.
    pub async fn open(
        location: Location<'_>,
        retention: Duration,
        publish: Publish,
    ) -> Result<Self> {
        Ok(match location {
            Location::Sqlite(dir) => Self::Sqlite(SqliteStore::open(dir, retention, publish)?),
            Location::Postgres(url) => {
                Self::Postgres(PostgresStore::open(url, retention, publish).await?)
            }
        })
    }
}

/// `$call` on whichever store `$backend` holds, named `$store`.
macro_rules! delegate {
    ($backend:expr, $store:ident => $call:expr) => {
        match $backend {
            Backend::Sqlite($store) => $call,
            Backend::Postgres($store) => $call,
        }
    };
}

impl Store for Backend {
    async fn stored_server_id(&self) -> Answer<Option<String>> {
        delegate!(self, s => s.stored_server_id().await)
    }

    async fn save_server_id(&self, id: &str) -> Answer<()> {
        delegate!(self, s => s.save_server_id(id).await)
    }

    async fn account_by_key(&self, key: &[u8]) -> Answer<Option<Account>> {
        delegate!(self, s => s.account_by_key(key).await)
    }

    async fn register(&self, user: &Name, machine: &Name, key: &[u8]) -> Answer<Account> {
        delegate!(self, s => s.register(user, machine, key).await)
    }

    async fn enroll(&self, code: &str, key: &[u8]) -> Answer<Account> {
        delegate!(self, s => s.enroll(code, key).await)
    }

    async fn invite_machine(
        &self,
        user: UserId,
        machine: &Name,
        code: &str,
        expires_at: i64,
        signer: Signer,
    ) -> Answer<()> {
        delegate!(self, s => s.invite_machine(user, machine, code, expires_at, signer).await)
    }

    async fn list_machines(&self, user: UserId) -> Answer<Vec<MachineInfo>> {
        delegate!(self, s => s.list_machines(user).await)
    }

    async fn remove_machine(&self, user: UserId, machine: &Name, signer: Signer) -> Answer<()> {
        delegate!(self, s => s.remove_machine(user, machine, signer).await)
    }

    async fn set_human_key(
        &self,
        user: UserId,
        machine: &Name,
        key: &[u8],
        signer_key: &[u8],
    ) -> Answer<()> {
        delegate!(self, s => s.set_human_key(user, machine, key, signer_key).await)
    }

    async fn create_channel(&self, new: &NewChannel) -> Answer<ChannelInfo> {
        delegate!(self, s => s.create_channel(new).await)
    }

    async fn open_direct(
        &self,
        name: &Name,
        opener: UserId,
        agent_turns: u32,
    ) -> Answer<Option<ChannelInfo>> {
        delegate!(self, s => s.open_direct(name, opener, agent_turns).await)
    }

    async fn list_channels(
        &self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Answer<(Vec<ChannelInfo>, bool)> {
        delegate!(self, s => s.list_channels(user, after, limit).await)
    }

    async fn visible_channel(&self, name: &Name, user: UserId) -> Answer<Channel> {
        delegate!(self, s => s.visible_channel(name, user).await)
    }

    async fn join(
        &self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> Answer<Joining> {
        delegate!(self, s => s.join(name, user, handle, invite).await)
    }

    async fn remove_member(&self, channel: ChannelId, user: UserId) -> Answer<bool> {
        delegate!(self, s => s.remove_member(channel, user).await)
    }

    async fn leave(&self, name: &Name, user: UserId) -> Answer<ChannelId> {
        delegate!(self, s => s.leave(name, user).await)
    }

    async fn members(
        &self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> Answer<(ChannelId, Vec<Name>)> {
        delegate!(self, s => s.members(name, user, limit).await)
    }

    async fn add_member(&self, by: &Actor, channel: &Name, member: &Name, now: i64) -> Answer<()> {
        delegate!(self, s => s.add_member(by, channel, member, now).await)
    }

    async fn describe_channel(&self, name: &Name, user: UserId) -> Answer<ChannelDetails> {
        delegate!(self, s => s.describe_channel(name, user).await)
    }

    async fn append(&self, append: Append) {
        delegate!(self, s => s.append(append).await)
    }

    async fn history(&self, name: &Name, user: UserId, range: HistoryRange) -> Answer<Page> {
        delegate!(self, s => s.history(name, user, range).await)
    }

    async fn catch_up(
        &self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Answer<Vec<ChatMessage>> {
        delegate!(self, s => s.catch_up(channel, after, upto, limit).await)
    }

    async fn last_seqs(&self, channels: &[ChannelId]) -> Answer<Vec<(ChannelId, u64)>> {
        delegate!(self, s => s.last_seqs(channels).await)
    }

    async fn search(&self, user: UserId, search: &Search) -> Answer<Found> {
        delegate!(self, s => s.search(user, search).await)
    }

    async fn claim_path(&self, path: &SessionPath) -> Answer<Option<i64>> {
        delegate!(self, s => s.claim_path(path).await)
    }

    async fn mark_read(&self, user: UserId, handle: &Name, channel: &Name, seq: u64) -> Answer<()> {
        delegate!(self, s => s.mark_read(user, handle, channel, seq).await)
    }

    async fn purge(&self, cutoff_ms: i64) -> Answer<Purged> {
        delegate!(self, s => s.purge(cutoff_ms).await)
    }

    async fn moderate(&self, moderation: Moderation) -> Answer<Moderated> {
        delegate!(self, s => s.moderate(moderation).await)
    }

    async fn create_invite(&self, by: &Actor, invite: &ChannelInvite, now: i64) -> Answer<Name> {
        delegate!(self, s => s.create_invite(by, invite, now).await)
    }

    async fn list_invites(&self, by: &Actor, channel: &Name, now: i64) -> Answer<Vec<InviteInfo>> {
        delegate!(self, s => s.list_invites(by, channel, now).await)
    }

    async fn ban_user(
        &self,
        by: &Actor,
        target: &Name,
        ban: &ServerBan,
        now: i64,
    ) -> Answer<UserId> {
        delegate!(self, s => s.ban_user(by, target, ban, now).await)
    }

    async fn unban_user(&self, by: &Actor, target: &Name, now: i64) -> Answer<()> {
        delegate!(self, s => s.unban_user(by, target, now).await)
    }

    async fn list_users(
        &self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> Answer<(Vec<(UserId, UserInfo)>, bool)> {
        delegate!(self, s => s.list_users(after, limit, now).await)
    }

    async fn audit_page(
        &self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> Answer<(Vec<AuditEntry>, bool)> {
        delegate!(self, s => s.audit_page(reader, channel, before, limit).await)
    }

    async fn record_audit(&self, record: &AuditRecord) -> Answer<()> {
        delegate!(self, s => s.record_audit(record).await)
    }
}
