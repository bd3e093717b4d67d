//! The `Store` API on PostgreSQL: reads run on a pool connection; every unit that writes is
//! one transaction on the writer (arguments are copied into the job, which runs on another
//! task), in the order it was asked for among this instance's writes and appends.

use super::{Db, PostgresStore};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    AuditEntry, ChannelDetails, ChannelInfo, ChatMessage, InviteInfo, MachineInfo, UserInfo,
};
use crate::server::store::{
    Account, Actor, Answer, Append, AuditRecord, Channel, ChannelId, ChannelInvite, Found,
    HistoryRange, Joining, Moderated, Moderation, NewChannel, Page, Purged, Search, ServerBan,
    Signer, Store, UserId,
};

impl Store for PostgresStore {
    async fn stored_server_id(&self) -> Answer<Option<String>> {
        Db::on(&self.conn().await?).stored_server_id().await
    }

    async fn save_server_id(&self, id: &str) -> Answer<()> {
        let id = id.to_owned();
        self.write(move |db, _| Box::pin(async move { db.save_server_id(&id).await }))
            .await
    }

    async fn account_by_key(&self, key: &[u8]) -> Answer<Option<Account>> {
        Db::on(&self.conn().await?).account_by_key(key).await
    }

    async fn register(&self, user: &Name, machine: &Name, key: &[u8]) -> Answer<Account> {
        let (user, machine, key) = (user.clone(), machine.clone(), key.to_vec());
        self.write(move |db, _| Box::pin(async move { db.register(&user, &machine, &key).await }))
            .await
    }

    async fn enroll(&self, code: &str, key: &[u8]) -> Answer<Account> {
        let (code, key) = (code.to_owned(), key.to_vec());
        self.write(move |db, _| Box::pin(async move { db.enroll(&code, &key).await }))
            .await
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
        self.write(move |db, _| {
            Box::pin(async move {
                db.invite_machine(user, &machine, &code, expires_at, signer)
                    .await
            })
        })
        .await
    }

    async fn list_machines(&self, user: UserId) -> Answer<Vec<MachineInfo>> {
        Db::on(&self.conn().await?).list_machines(user).await
    }

    async fn remove_machine(&self, user: UserId, machine: &Name, signer: Signer) -> Answer<()> {
        let machine = machine.clone();
        self.write(move |db, _| {
            Box::pin(async move { db.remove_machine(user, &machine, signer).await })
        })
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
        self.write(move |db, _| {
            Box::pin(async move { db.set_human_key(user, &machine, &key, &signer_key).await })
        })
        .await
    }

    async fn create_channel(&self, new: &NewChannel) -> Answer<ChannelInfo> {
        let new = new.clone();
        self.write(move |db, _| Box::pin(async move { db.create_channel(&new).await }))
            .await
    }

    async fn open_direct(
        &self,
        name: &Name,
        opener: UserId,
        agent_turns: u32,
    ) -> Answer<Option<ChannelInfo>> {
        let name = name.clone();
        self.write(move |db, _| {
            Box::pin(async move { db.open_direct(&name, opener, agent_turns).await })
        })
        .await
    }

    async fn list_channels(
        &self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Answer<(Vec<ChannelInfo>, bool)> {
        Db::on(&self.conn().await?)
            .list_channels(user, after, limit)
            .await
    }

    async fn visible_channel(&self, name: &Name, user: UserId) -> Answer<Channel> {
        Db::on(&self.conn().await?)
            .visible_channel(name, user)
            .await
    }

    async fn join(
        &self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> Answer<Joining> {
        let (name, handle, invite) = (name.clone(), handle.clone(), invite.map(str::to_owned));
        self.write(move |db, _| {
            Box::pin(async move { db.join(&name, user, &handle, invite.as_deref()).await })
        })
        .await
    }

    async fn remove_member(&self, channel: ChannelId, user: UserId) -> Answer<bool> {
        self.write(move |db, _| Box::pin(async move { db.remove_member(channel, user).await }))
            .await
    }

    async fn leave(&self, name: &Name, user: UserId) -> Answer<ChannelId> {
        let name = name.clone();
        self.write(move |db, _| Box::pin(async move { db.leave(&name, user).await }))
            .await
    }

    async fn members(
        &self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> Answer<(ChannelId, Vec<Name>)> {
        Db::on(&self.conn().await?).members(name, user, limit).await
    }

    async fn add_member(&self, by: &Actor, channel: &Name, member: &Name, now: i64) -> Answer<()> {
        let (by, channel, member) = (by.clone(), channel.clone(), member.clone());
        self.write(move |db, _| {
            Box::pin(async move { db.add_member(&by, &channel, &member, now).await })
        })
        .await
    }

    async fn describe_channel(&self, name: &Name, user: UserId) -> Answer<ChannelDetails> {
        Db::on(&self.conn().await?)
            .describe_channel(name, user)
            .await
    }

    async fn append(&self, append: Append) {
        self.queue_append(append).await;
    }

    async fn history(&self, name: &Name, user: UserId, range: HistoryRange) -> Answer<Page> {
        Db::on(&self.conn().await?).history(name, user, range).await
    }

    async fn catch_up(
        &self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Answer<Vec<ChatMessage>> {
        Db::on(&self.conn().await?)
            .catch_up(channel, after, upto, limit)
            .await
    }

    async fn last_seqs(&self, channels: &[ChannelId]) -> Answer<Vec<(ChannelId, u64)>> {
        Db::on(&self.conn().await?).last_seqs(channels).await
    }

    async fn search(&self, user: UserId, search: &Search) -> Answer<Found> {
        Db::on(&self.conn().await?).search(user, search).await
    }

    async fn claim_path(&self, path: &SessionPath) -> Answer<Option<i64>> {
        let row = Db::on(&self.conn().await?)
            .query_one(
                "INSERT INTO session_claims (path, generation) VALUES ($1, 1)
                 ON CONFLICT (path) DO UPDATE SET generation = session_claims.generation + 1
                 RETURNING generation",
                &[&path.to_string()],
            )
            .await?;
        Ok(Some(row.get(0)))
    }

    async fn mark_read(&self, user: UserId, handle: &Name, channel: &Name, seq: u64) -> Answer<()> {
        let (handle, channel) = (handle.clone(), channel.clone());
        self.write(move |db, _| {
            Box::pin(async move { db.mark_read(user, &handle, &channel, seq).await })
        })
        .await
    }

    async fn purge(&self, cutoff_ms: i64) -> Answer<Purged> {
        self.write(move |db, _| Box::pin(async move { db.purge(cutoff_ms, true).await }))
            .await
    }

    async fn moderate(&self, mut moderation: Moderation) -> Answer<Moderated> {
        let then = std::mem::replace(&mut moderation.then, Box::new(|_| {}));
        // `then` runs on the writer right after the commit: nothing this instance stores
        // later is published first.
        self.write_then(
            move |db, brakes| Box::pin(async move { db.moderate(&moderation, brakes).await }),
            move |done| then(done),
        )
        .await
    }

    async fn create_invite(&self, by: &Actor, invite: &ChannelInvite, now: i64) -> Answer<Name> {
        let (by, invite) = (by.clone(), invite.clone());
        self.write(move |db, _| Box::pin(async move { db.create_invite(&by, &invite, now).await }))
            .await
    }

    async fn list_invites(&self, by: &Actor, channel: &Name, now: i64) -> Answer<Vec<InviteInfo>> {
        Db::on(&self.conn().await?)
            .list_invites(by, channel, now)
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
        self.write(move |db, _| Box::pin(async move { db.ban_user(&by, &target, &ban, now).await }))
            .await
    }

    async fn unban_user(&self, by: &Actor, target: &Name, now: i64) -> Answer<()> {
        let (by, target) = (by.clone(), target.clone());
        self.write(move |db, _| Box::pin(async move { db.unban_user(&by, &target, now).await }))
            .await
    }

    async fn list_users(
        &self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> Answer<(Vec<(UserId, UserInfo)>, bool)> {
        Db::on(&self.conn().await?)
            .list_users(after, limit, now)
            .await
    }

    async fn audit_page(
        &self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> Answer<(Vec<AuditEntry>, bool)> {
        Db::on(&self.conn().await?)
            .audit_page(reader, channel, before, limit)
            .await
    }

    async fn record_audit(&self, record: &AuditRecord) -> Answer<()> {
        let record = record.clone();
        self.write(move |db, _| Box::pin(async move { db.record_audit(&record).await }))
            .await
    }
}
