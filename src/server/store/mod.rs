//! Durable state: users, machines, channels, memberships, messages, read positions,
//! governance and the audit log, behind one API.
//!
//! `Store` names every unit of work a request needs, each taking and returning plain values
//! (`types`), so any backend can implement the same list and the request handlers never see
//! one. A unit that checks who may do something does so next to the data, inside the unit,
//! asking `server::rules` for the rule itself: nothing between the check and the write can
//! change the answer. `sqlite` is the embedded backend, `postgres` the shared one, and
//! `Backend` the one a server runs on; `tests/store_conformance` holds the suite every
//! backend must pass. Presence is not stored; the hub keeps it in memory.
//!
//! New work a handler needs becomes a new method here (and in every backend), never a
//! closure handed to a backend.

use std::future::Future;

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    AuditEntry, ChannelDetails, ChannelInfo, ChatMessage, InviteInfo, MachineInfo, ProtocolError,
    UserInfo,
};

mod acts;
mod backend;
mod brakes;
pub mod changes;
pub mod postgres;
mod queue;
mod refusals;
pub mod sqlite;
mod types;

pub use backend::{Backend, Location};
pub use postgres::PostgresStore;
pub use queue::MAX_QUEUED_BYTES;
pub use sqlite::{SqliteStore, StoreError};
pub use types::*;

/// An answer from the store.
pub type Answer<T> = Result<T, ProtocolError>;

/// The store API. Every method is one unit of work: all of its writes happen or none do.
/// Refusals are `ProtocolError`s worded for the person who asked.
pub trait Store: Send + Sync {
    // The server's identity.

    /// The id this database belongs to, if it was ever started (see `server::server_id`).
    fn stored_server_id(&self) -> impl Future<Output = Answer<Option<String>>> + Send;

    fn save_server_id(&self, id: &str) -> impl Future<Output = Answer<()>> + Send;

    // Accounts and machines.

    /// The machine `key` signs in as: its machine key, or its human key.
    fn account_by_key(&self, key: &[u8]) -> impl Future<Output = Answer<Option<Account>>> + Send;

    /// Claims `user` and enrolls `key` as its `machine`. Registering again with the same key
    /// and name is a no-op, so `register` can be re-run safely.
    fn register(
        &self,
        user: &Name,
        machine: &Name,
        key: &[u8],
    ) -> impl Future<Output = Answer<Account>> + Send;

    /// Uses up an invite `code` to enroll `key` (whose possession the caller has checked).
    /// A refused key keeps the code.
    fn enroll(&self, code: &str, key: &[u8]) -> impl Future<Output = Answer<Account>> + Send;

    /// Records a one-time `code` that lets a new machine enroll its key under `user` as
    /// `machine`, until `expires_at`. Once the account uses human keys only a person may.
    fn invite_machine(
        &self,
        user: UserId,
        machine: &Name,
        code: &str,
        expires_at: i64,
        signer: Signer,
    ) -> impl Future<Output = Answer<()>> + Send;

    fn list_machines(&self, user: UserId) -> impl Future<Output = Answer<Vec<MachineInfo>>> + Send;

    /// Removes a machine, and every open invite of the user with it; its key stops working at
    /// once. The last machine cannot go. Once the account uses human keys only a person may.
    fn remove_machine(
        &self,
        user: UserId,
        machine: &Name,
        signer: Signer,
    ) -> impl Future<Output = Answer<()>> + Send;

    /// Registers `key` as the human key of `user`'s `machine`, asked by a session signed in
    /// with `signer_key`. Only that very human key replaces one; a machine's first may come
    /// from its machine key while the account has none, or while the machine is newly
    /// enrolled.
    fn set_human_key(
        &self,
        user: UserId,
        machine: &Name,
        key: &[u8],
        signer_key: &[u8],
    ) -> impl Future<Output = Answer<()>> + Send;

    // Channels and members.

    /// Makes a channel with its creator as owner, under the creator's cap.
    fn create_channel(&self, new: &NewChannel) -> impl Future<Output = Answer<ChannelInfo>> + Send;

    /// Opens the direct conversation `name` (see `Name::direct`) for `opener`, one of its two
    /// users: made on first use with both as members (neither owns it), and both made members
    /// again when one had left. `Some` when it was made now.
    fn open_direct(
        &self,
        name: &Name,
        opener: UserId,
        agent_turns: u32,
    ) -> impl Future<Output = Answer<Option<ChannelInfo>>> + Send;

    /// One page of the channels `user` may see (public ones and their own), by name after
    /// `after`; and whether another page follows.
    fn list_channels(
        &self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> impl Future<Output = Answer<(Vec<ChannelInfo>, bool)>> + Send;

    /// The channel, if `user` may see it. Private channels a user is not in are reported
    /// exactly like missing ones, so their names never leak.
    fn visible_channel(
        &self,
        name: &Name,
        user: UserId,
    ) -> impl Future<Output = Answer<Channel>> + Send;

    /// Makes `user` a member (public and unlisted channels admit anyone not banned; private
    /// ones their members, or whoever holds an invite) and reads `handle`'s read position.
    fn join(
        &self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> impl Future<Output = Answer<Joining>> + Send;

    /// Ends a membership (an owner hands the channel on); false if there was none.
    fn remove_member(
        &self,
        channel: ChannelId,
        user: UserId,
    ) -> impl Future<Output = Answer<bool>> + Send;

    /// Ends `user`'s own membership of a channel they can see; the channel's id.
    fn leave(&self, name: &Name, user: UserId) -> impl Future<Output = Answer<ChannelId>> + Send;

    /// The member users of a channel `user` may read, by name, at most `limit` of them.
    fn members(
        &self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> impl Future<Output = Answer<(ChannelId, Vec<Name>)>> + Send;

    /// A moderator (or admin) brings `member` in, unless banned; audited when it adds.
    fn add_member(
        &self,
        by: &Actor,
        channel: &Name,
        member: &Name,
        now: i64,
    ) -> impl Future<Output = Answer<()>> + Send;

    /// The channel in full as `user` sees it, if they may read it.
    fn describe_channel(
        &self,
        name: &Name,
        user: UserId,
    ) -> impl Future<Output = Answer<ChannelDetails>> + Send;

    // Messages.

    /// Queues a message, waiting for room first. Once it is committed (seq assigned, or an
    /// earlier one with its client id found) or refused, `append.then` runs; then the commit's
    /// new messages are published. Appends that wait together commit together, in order.
    fn append(&self, append: Append) -> impl Future<Output = ()> + Send;

    /// A page of history of a channel `user` may read, oldest first. Pages stop at
    /// `range.limit` messages or at `MAX_HISTORY_PAGE_BYTES` of text, whichever comes first
    /// (always at least one message).
    fn history(
        &self,
        name: &Name,
        user: UserId,
        range: HistoryRange,
    ) -> impl Future<Output = Answer<Page>> + Send;

    /// Stored messages of a channel with seqs after `after`, up to `upto`, oldest first, at
    /// most `limit`: what an instance missed of a channel (no reader's rights apply; the hub
    /// delivers them only to the channel's subscribers). A channel that is gone has none.
    fn catch_up(
        &self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> impl Future<Output = Answer<Vec<ChatMessage>>> + Send;

    /// The newest seq of each of `channels` that still exists.
    fn last_seqs(
        &self,
        channels: &[ChannelId],
    ) -> impl Future<Output = Answer<Vec<(ChannelId, u64)>>> + Send;

    /// Messages matching `search` among those `user` may read, newest first: in the one
    /// channel it names (if they may read it), else in every channel they are a member of.
    fn search(&self, user: UserId, search: &Search) -> impl Future<Output = Answer<Found>> + Send;

    /// Claims a session path for a sign-in on an instance of several: the claim's generation,
    /// one above the last. Messages carry it, and a store refuses those of an older claim, so
    /// a session taken over elsewhere cannot post (see `Append::claim`). `None` on a store
    /// only one instance uses.
    fn claim_path(&self, path: &SessionPath) -> impl Future<Output = Answer<Option<i64>>> + Send;

    /// Moves `handle`'s read position in a channel forward to `seq` (never back, never past
    /// the newest message).
    fn mark_read(
        &self,
        user: UserId,
        handle: &Name,
        channel: &Name,
        seq: u64,
    ) -> impl Future<Output = Answer<()>> + Send;

    /// Drops messages and audit entries older than `cutoff_ms` (the retention window).
    fn purge(&self, cutoff_ms: i64) -> impl Future<Output = Answer<Purged>> + Send;

    // Governance.

    /// Looks up where the actor (and the target) stand, checks the act against
    /// `server::rules`, applies it and writes it to the audit log, as one unit; then runs
    /// `moderation.then`.
    fn moderate(&self, moderation: Moderation) -> impl Future<Output = Answer<Moderated>> + Send;

    /// Stores an invite token made by a moderator (or admin), audited; the channel's name.
    fn create_invite(
        &self,
        by: &Actor,
        invite: &ChannelInvite,
        now: i64,
    ) -> impl Future<Output = Answer<Name>> + Send;

    /// The channel's open invites, for its moderators: at most `MAX_LISTED_INVITES`, those
    /// that expire last first.
    fn list_invites(
        &self,
        by: &Actor,
        channel: &Name,
        now: i64,
    ) -> impl Future<Output = Answer<Vec<InviteInfo>>> + Send;

    /// Bans a user from the server (the caller has checked it may), audited; their id.
    fn ban_user(
        &self,
        by: &Actor,
        target: &Name,
        ban: &ServerBan,
        now: i64,
    ) -> impl Future<Output = Answer<UserId>> + Send;

    /// Lifts a server ban in force, audited.
    fn unban_user(
        &self,
        by: &Actor,
        target: &Name,
        now: i64,
    ) -> impl Future<Output = Answer<()>> + Send;

    /// One page of users by name after `after` (live sessions and admin flags are the
    /// caller's to fill in); and whether more follow.
    fn list_users(
        &self,
        after: Option<&Name>,
        limit: u32,
        now: i64,
    ) -> impl Future<Output = Answer<(Vec<(UserId, UserInfo)>, bool)>> + Send;

    /// A page of the audit log as `reader` may see it, newest first, of entries older than
    /// `before`; and whether more follow. With a channel: its log, for its moderators, owner
    /// and admins. Without: everything for an admin; for anyone else their own acts and
    /// those in the channels they moderate.
    fn audit_page(
        &self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> impl Future<Output = Answer<(Vec<AuditEntry>, bool)>> + Send;

    /// Writes an act done elsewhere (a relayed verdict) to the audit log.
    fn record_audit(&self, record: &AuditRecord) -> impl Future<Output = Answer<()>> + Send;
}
