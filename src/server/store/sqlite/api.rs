//! The `Store` API on SQLite: each method is one job on the store thread, running one `Db`
//! method (which holds the unit's queries and checks). Arguments are copied into the job,
//! since it runs on another thread.

use super::SqliteStore;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    AuditEntry, ChannelDetails, ChannelInfo, ChatMessage, InviteInfo, MachineInfo, UserInfo,
};
use crate::server::store::{
    Account, Actor, Answer, Append, AuditRecord, Channel, ChannelId, ChannelInvite, Found,
    HistoryRange, Joining, Moderated, Moderation, NewChannel, Page, Purged, Search, ServerBan,
    Signer, Store, UserId,
};

impl Store for SqliteStore {
    async fn stored_server_id(&self) -> Answer<Option<String>> {
        self.call(|db| db.stored_server_id()).await
    }

    async fn save_server_id(&self, id: &str) -> Answer<()> {
        let id = id.to_owned();
        self.call(move |db| db.save_server_id(&id)).await
    }

    async fn account_by_key(&self, key: &[u8]) -> Answer<Option<Account>> {
        let key = key.to_vec();
        self.call(move |db| db.account_by_key(&key)).await
    }

    async fn register(&self, user: &Name, machine: &Name, key: &[u8]) -> Answer<Account> {
        let (user, machine, key) = (user.clone(), machine.clone(), key.to_vec());
        self.call(move |db| db.register(&user, &machine, &key))
            .await
    }

    async fn enroll(&self, code: &str, key: &[u8]) -> Answer<Account> {
        let (code, key) = (code.to_owned(), key.to_vec());
        self.call(move |db| db.enroll(&code, &key)).await
    }

    async fn invite_machine(
        &self,
        user: UserId,
        machine: &Name,
        code: &str,
        expires_at: i64,
        signer: Signer,
    ) -> Answer<()> {
        let (machine, code) = (machine.clone(), code.to_owned());
        self.call(move |db| db.invite_machine(user, &machine, &code, expires_at, signer))
            .await
    }

    async fn list_machines(&self, user: UserId) -> Answer<Vec<MachineInfo>> {
        self.call(move |db| db.list_machines(user)).await
    }

    async fn remove_machine(&self, user: UserId, machine: &Name, signer: Signer) -> Answer<()> {
        let machine = machine.clone();
        self.call(move |db| db.remove_machine(user, &machine, signer))
            .await
    }

    async fn set_human_key(
        &self,
        user: UserId,
        machine: &Name,
        key: &[u8],
        signer_key: &[u8],
    ) -> Answer<()> {
        let (machine, key, signer_key) = (machine.clone(), key.to_vec(), signer_key.to_vec());
        self.call(move |db| db.set_human_key(user, &machine, &key, &signer_key))
            .await
    }

    async fn create_channel(&self, new: &NewChannel) -> Answer<ChannelInfo> {
        let new = new.clone();
        self.call(move |db| db.create_channel(&new)).await
    }

    async fn open_direct(
        &self,
        name: &Name,
        opener: UserId,
        agent_turns: u32,
    ) -> Answer<Option<ChannelInfo>> {
        let name = name.clone();
        self.call(move |db| db.open_direct(&name, opener, agent_turns))
            .await
    }

    async fn list_channels(
        &self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Answer<(Vec<ChannelInfo>, bool)> {
        let after = after.cloned();
        self.call(move |db| db.list_channels(user, after.as_ref(), limit))
            .await
    }

    async fn visible_channel(&self, name: &Name, user: UserId) -> Answer<Channel> {
        let name = name.clone();
        self.call(move |db| db.visible_channel(&name, user)).await
    }

    async fn join(
        &self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> Answer<Joining> {
        let (name, handle, invite) = (name.clone(), handle.clone(), invite.map(str::to_owned));
        self.call(move |db| db.join(&name, user, &handle, invite.as_deref()))
            .await
    }

    async fn remove_member(&self, channel: ChannelId, user: UserId) -> Answer<bool> {
        self.call(move |db| db.remove_member(channel, user)).await
    }

    async fn leave(&self, name: &Name, user: UserId) -> Answer<ChannelId> {
        let name = name.clone();
        self.call(move |db| db.leave(&name, user)).await
    }

    async fn members(
        &self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> Answer<(ChannelId, Vec<Name>)> {
        let name = name.clone();
        self.call(move |db| db.members(&name, user, limit)).await
    }

    async fn add_member(&self, by: &Actor, channel: &Name, member: &Name, now: i64) -> Answer<()> {
        let (by, channel, member) = (by.clone(), channel.clone(), member.clone());
        self.call(move |db| db.add_member(&by, &channel, &member, now))
            .await
    }

    async fn describe_channel(&self, name: &Name, user: UserId) -> Answer<ChannelDetails> {
        let name = name.clone();
        self.call(move |db| db.describe_channel(&name, user)).await
    }

    async fn append(&self, append: Append) {
        self.queue_append(append).await;
    }

    async fn history(&self, name: &Name, user: UserId, range: HistoryRange) -> Answer<Page> {
        let name = name.clone();
        self.call(move |db| db.history(&name, user, range)).await
    }

    async fn catch_up(
        &self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Answer<Vec<ChatMessage>> {
        self.call(move |db| db.catch_up(channel, after, upto, limit))
            .await
    }

    async fn last_seqs(&self, channels: &[ChannelId]) -> Answer<Vec<(ChannelId, u64)>> {
        let channels = channels.to_vec();
        self.call(move |db| db.last_seqs(&channels)).await
    }

    async fn search(&self, user: UserId, search: &Search) -> Answer<Found> {
        let search = search.clone();
        self.call(move |db| db.search(user, &search)).await
    }

    async fn claim_path(&self, _path: &SessionPath) -> Answer<Option<i64>> {
        // One instance only (its data dir is locked): nobody else can take a path over.
        Ok(None)
    }

    async fn mark_read(&self, user: UserId, handle: &Name, channel: &Name, seq: u64) -> Answer<()> {
        let (handle, channel) = (handle.clone(), channel.clone());
        self.call(move |db| db.mark_read(user, &handle, &channel, seq))
            .await
    }

    async fn purge(&self, cutoff_ms: i64) -> Answer<Purged> {
        self.call(move |db| db.purge(cutoff_ms)).await
    }

    async fn moderate(&self, moderation: Moderation) -> Answer<Moderated> {
        self.call(move |db| {
            let done = db.moderate(&moderation)?;
            // On the store thread, right after the commit: nothing stored later (a message
            // to a new channel that reuses a deleted one's id, say) is published first.
            (moderation.then)(&done);
            Ok(done)
        })
        .await
    }

    async fn create_invite(&self, by: &Actor, invite: &ChannelInvite, now: i64) -> Answer<Name> {
        let (by, invite) = (by.clone(), invite.clone());
        self.call(move |db| db.create_invite(&by, &invite, now))
            .await
    }

    async fn list_invites(&self, by: &Actor, channel: &Name, now: i64) -> Answer<Vec<InviteInfo>> {
        let (by, channel) = (by.clone(), channel.clone());
        self.call(move |db| db.list_invites(&by, &channel, now))
            .await
    }

    async fn ban_user(
        &self,
        by: &Actor,
        target: &Name,
        ban: &ServerBan,
        now: i64,
    ) -> Answer<UserId> {
        let (by, target, ban) = (by.clone(), target.clone(), ban.clone());
        self.call(move |db| db.ban_user(&by, &target, &ban, now))
            .await
    }

    async fn unban_user(&self, by: &Actor, target: &Name, now: i64) -> Answer<()> {
        let (by, target) = (by.clone(), target.clone());
        self.call(move |db| db.unban_user(&by, &target, now)).await
    }

    async fn list_users(
        &self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> Answer<(Vec<(UserId, UserInfo)>, bool)> {
        let after = after.cloned();
        self.call(move |db| db.list_users(after.as_ref(), limit, now))
            .await
    }

    async fn audit_page(
        &self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> Answer<(Vec<AuditEntry>, bool)> {
        let (reader, channel) = (reader.clone(), channel.cloned());
        self.call(move |db| db.audit_page(&reader, channel.as_ref(), before, limit))
            .await
    }

    async fn record_audit(&self, record: &AuditRecord) -> Answer<()> {
        let record = record.clone();
        self.call(move |db| db.record_audit(&record)).await
    }
}
