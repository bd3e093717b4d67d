//! Governance: the rules asked inside each act, what bans, mutes, roles, renames and deletes
//! do, invites, members added by moderators, server bans, the user list and the audit log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::net::protocol::{ChannelAct, ErrorCode, KickTarget, Role, Visibility};
use conclave::server::store::{
    Actor, AuditRecord, ChannelInvite, Moderation, ServerBan, Store, now_ms,
};

use crate::support::{act, actor, channel, join, name, names, post, refused, setup, user};

fn kick(user: &str) -> ChannelAct {
    ChannelAct::Kick {
        target: KickTarget::User(name(user)),
        ban_for_ms: None,
    }
}

fn ban(user: &str) -> ChannelAct {
    ChannelAct::Ban {
        user: name(user),
        for_ms: None,
    }
}

fn invite(channel: &str, token: &str, uses: u32) -> ChannelInvite {
    ChannelInvite {
        channel: name(channel),
        token: token.into(),
        uses,
        expires_at: now_ms() + 60_000,
    }
}

pub async fn members_cannot_moderate_nor_learn_who_exists(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let as_bob = actor(&bob, false);
    let refusal = "only moderators and the owner of #general may kick";
    refused(
        act(&store, &as_bob, "general", kick("alice")).await,
        ErrorCode::Forbidden,
        refusal,
    );
    let nobody = act(&store, &as_bob, "general", kick("nobody")).await;
    refused(nobody, ErrorCode::Forbidden, refusal);
    let rename = ChannelAct::Rename { name: name("mine") };
    let moderator = ChannelAct::Role {
        user: name("bob"),
        role: Role::Moderator,
    };
    act(&store, &actor(&alice, false), "general", moderator)
        .await
        .unwrap();
    let not_owner = act(&store, &as_bob, "general", rename).await;
    refused(
        not_owner,
        ErrorCode::Forbidden,
        "only the owner of #general or a server admin",
    );
    let upward = act(&store, &as_bob, "general", kick("alice")).await;
    refused(upward, ErrorCode::Forbidden, "alice is owner of #general");
}

pub async fn a_ban_ends_the_membership_and_keeps_the_user_out(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let owner = actor(&alice, false);
    let done = act(&store, &owner, "general", ban("bob")).await.unwrap();
    assert_eq!(done.target, Some(bob.user_id));
    let (_, members) = store
        .members(&name("general"), alice.user_id, 10)
        .await
        .unwrap();
    assert_eq!(names(&members), ["alice"]);
    let general = name("general");
    let again = store.join(&general, bob.user_id, &name("cli"), None).await;
    refused(again, ErrorCode::Forbidden, "you are banned from #general");
    store
        .create_invite(&owner, &invite("general", "t1", 5), now_ms())
        .await
        .unwrap();
    let invited = store
        .join(&general, bob.user_id, &name("cli"), Some("t1"))
        .await;
    refused(
        invited,
        ErrorCode::Forbidden,
        "you are banned from #general",
    );
    let unban = || ChannelAct::Unban { user: name("bob") };
    act(&store, &owner, "general", unban()).await.unwrap();
    join(&store, &bob, "general").await;
    refused(
        act(&store, &owner, "general", unban()).await,
        ErrorCode::NotFound,
        "bob is not banned",
    );
}

pub async fn a_mute_stops_posts_but_not_reading(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let owner = actor(&alice, false);
    let mute = ChannelAct::Mute {
        user: name("bob"),
        for_ms: Some(60_000),
    };
    act(&store, &owner, "general", mute).await.unwrap();
    refused(
        post(&store, &bob, "general", "b1", "hi").await,
        ErrorCode::Forbidden,
        "you are muted in #general",
    );
    let details = store
        .describe_channel(&name("general"), bob.user_id)
        .await
        .unwrap();
    assert!(details.muted_until.is_some_and(|t| t > now_ms()));
    assert_eq!(details.role, Some(Role::Member));
    act(
        &store,
        &owner,
        "general",
        ChannelAct::Unmute { user: name("bob") },
    )
    .await
    .unwrap();
    post(&store, &bob, "general", "b1", "hi").await.unwrap();
}

pub async fn roles_come_from_the_owner_and_a_handover_keeps_the_old_owner_a_moderator(
    store: impl Store,
) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    join(&store, &bob, "general").await;
    join(&store, &carol, "general").await;
    let role = |user: &str, role| ChannelAct::Role {
        user: name(user),
        role,
    };
    let owner = actor(&alice, false);
    act(&store, &owner, "general", role("bob", Role::Moderator))
        .await
        .unwrap();
    let details = store
        .describe_channel(&name("general"), bob.user_id)
        .await
        .unwrap();
    assert_eq!(
        (details.role, names(&details.moderators)),
        (Some(Role::Moderator), vec!["bob".into()])
    );
    act(&store, &actor(&bob, false), "general", kick("carol"))
        .await
        .unwrap();
    act(&store, &owner, "general", role("bob", Role::Owner))
        .await
        .unwrap();
    let details = store
        .describe_channel(&name("general"), alice.user_id)
        .await
        .unwrap();
    assert_eq!(
        (details.owner, details.role),
        (Some(name("bob")), Some(Role::Moderator))
    );
    let outsider = act(
        &store,
        &actor(&bob, false),
        "general",
        role("carol", Role::Moderator),
    )
    .await;
    refused(
        outsider,
        ErrorCode::NotFound,
        "carol is not a member of #general",
    );
}

pub async fn a_rename_keeps_the_history_and_frees_the_old_name(store: impl Store) {
    let alice = setup(&store).await;
    post(&store, &alice, "general", "c1", "before")
        .await
        .unwrap();
    store
        .mark_read(alice.user_id, &name("cli"), &name("general"), 1)
        .await
        .unwrap();
    let rename = ChannelAct::Rename {
        name: name("lounge"),
    };
    act(&store, &actor(&alice, false), "general", rename)
        .await
        .unwrap();
    let range = conclave::server::store::HistoryRange {
        after: Some(0),
        before: None,
        limit: 10,
        thread: None,
    };
    let page = store
        .history(&name("lounge"), alice.user_id, range)
        .await
        .unwrap();
    assert_eq!(page.messages[0].text, "before");
    // Read positions follow the channel to its new name.
    let lounge = store
        .join(&name("lounge"), alice.user_id, &name("cli"), None)
        .await
        .unwrap();
    assert_eq!(lounge.read_seq, 1);
    let gone = store.visible_channel(&name("general"), alice.user_id).await;
    refused(gone, ErrorCode::NotFound, "there is no channel #general");
    channel(&store, &alice, "general", Visibility::Public).await;
    channel(&store, &alice, "taken", Visibility::Public).await;
    let onto = act(
        &store,
        &actor(&alice, false),
        "lounge",
        ChannelAct::Rename {
            name: name("taken"),
        },
    )
    .await;
    refused(
        onto,
        ErrorCode::Conflict,
        "the name #taken is not available",
    );
}

pub async fn archiving_makes_a_channel_read_only_and_deleting_takes_it_away(store: impl Store) {
    let alice = setup(&store).await;
    let owner = actor(&alice, false);
    post(&store, &alice, "general", "c1", "kept").await.unwrap();
    act(&store, &owner, "general", ChannelAct::Archive)
        .await
        .unwrap();
    refused(
        post(&store, &alice, "general", "c2", "no").await,
        ErrorCode::Forbidden,
        "archived",
    );
    act(&store, &owner, "general", ChannelAct::Unarchive)
        .await
        .unwrap();
    post(&store, &alice, "general", "c2", "yes").await.unwrap();
    act(&store, &owner, "general", ChannelAct::Delete)
        .await
        .unwrap();
    let gone = store.visible_channel(&name("general"), alice.user_id).await;
    refused(gone, ErrorCode::NotFound, "there is no channel #general");
    let (entries, _) = store
        .audit_page(&actor(&alice, true), None, None, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["delete", "unarchive", "archive"],
        "the log outlives the channel"
    );
    assert_eq!(entries[0].channel, Some(name("general")));
}

pub async fn the_hook_runs_after_a_done_act_and_never_after_a_refused_one(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let moderation = |by: &Actor, act: ChannelAct| {
        let heard = heard.clone();
        Moderation {
            channel: name("general"),
            by: by.clone(),
            act,
            target_admin: false,
            reason: Some("spam".into()),
            now: now_ms(),
            then: Box::new(move |done| {
                heard
                    .lock()
                    .unwrap()
                    .push((done.channel.name.to_string(), done.target));
            }),
        }
    };
    let refused_act = store
        .moderate(moderation(&actor(&bob, false), kick("alice")))
        .await;
    assert!(refused_act.is_err());
    assert!(heard.lock().unwrap().is_empty());
    store
        .moderate(moderation(&actor(&alice, false), kick("bob")))
        .await
        .unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [("general".to_owned(), Some(bob.user_id))]
    );
    let (entries, _) = store
        .audit_page(&actor(&alice, false), None, None, 1)
        .await
        .unwrap();
    assert_eq!(entries[0].reason.as_deref(), Some("spam"));
    assert_eq!(entries[0].target.as_deref(), Some("bob"));
}

pub async fn invites_admit_to_private_channels_for_their_uses(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    let owner = actor(&alice, false);
    let made = store
        .create_invite(&owner, &invite("secret", "t1", 1), now_ms())
        .await;
    assert_eq!(made.unwrap(), name("secret"));
    let secret = name("secret");
    let joined = store
        .join(&secret, bob.user_id, &name("cli"), Some("t1"))
        .await
        .unwrap();
    assert!(joined.new_member);
    let used_up = store
        .join(&secret, carol.user_id, &name("cli"), Some("t1"))
        .await;
    refused(
        used_up,
        ErrorCode::Forbidden,
        "that invite to #secret is not valid",
    );
    let as_bob = actor(&bob, false);
    let member = store
        .create_invite(&as_bob, &invite("secret", "t2", 1), now_ms())
        .await;
    refused(member, ErrorCode::Forbidden, "may make invites");
    store
        .create_invite(&owner, &invite("secret", "t3", 5), now_ms())
        .await
        .unwrap();
    // Moderators see every open token, so they can revoke one; members see none.
    let listed = store
        .list_invites(&owner, &name("secret"), now_ms())
        .await
        .unwrap();
    let tokens: Vec<(&str, u32)> = listed
        .iter()
        .map(|i| (i.token.as_str(), i.uses_left))
        .collect();
    assert_eq!(tokens, [("t3", 5)], "t1 is used up, t2 was refused");
    assert_eq!(listed[0].by.as_str(), "alice");
    let member = store.list_invites(&as_bob, &name("secret"), now_ms()).await;
    refused(member, ErrorCode::Forbidden, "may see its invites");
    let revoke = ChannelAct::RevokeInvite { token: "t3".into() };
    act(&store, &owner, "secret", revoke).await.unwrap();
    let listed = store.list_invites(&owner, &name("secret"), now_ms()).await;
    assert!(listed.unwrap().is_empty());
    let revoked = store
        .join(&secret, carol.user_id, &name("cli"), Some("t3"))
        .await;
    refused(revoked, ErrorCode::Forbidden, "not valid");
    let again = act(
        &store,
        &owner,
        "secret",
        ChannelAct::RevokeInvite { token: "t3".into() },
    )
    .await;
    refused(again, ErrorCode::NotFound, "#secret has no invite t3");
}

pub async fn moderators_add_members_who_are_not_banned(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    let owner = actor(&alice, false);
    let now = now_ms();
    store
        .add_member(&owner, &name("secret"), &name("bob"), now)
        .await
        .unwrap();
    store
        .visible_channel(&name("secret"), bob.user_id)
        .await
        .unwrap();
    let by_member = store
        .add_member(&actor(&bob, false), &name("secret"), &name("carol"), now)
        .await;
    refused(
        by_member,
        ErrorCode::Forbidden,
        "only moderators and the owner of #secret may add members",
    );
    store
        .add_member(&owner, &name("secret"), &name("bob"), now)
        .await
        .unwrap();
    let ban_carol = act(&store, &owner, "secret", ban("carol")).await;
    assert_eq!(ban_carol.unwrap().target, Some(carol.user_id));
    let banned = store
        .add_member(&owner, &name("secret"), &name("carol"), now)
        .await;
    refused(banned, ErrorCode::Forbidden, "carol is banned from #secret");
    let nobody = store
        .add_member(&owner, &name("secret"), &name("nobody"), now)
        .await;
    refused(nobody, ErrorCode::NotFound, "there is no user `nobody`");
    let (entries, _) = store
        .audit_page(&owner, Some(&name("secret")), None, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["ban", "add-member"],
        "adding a member twice is written once"
    );
}

pub async fn a_server_ban_shows_at_sign_in_until_it_is_lifted(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let admin = actor(&alice, true);
    let banned = ServerBan {
        until: now_ms() + 60_000,
        reason: Some("spam".into()),
    };
    let id = store
        .ban_user(&admin, &name("bob"), &banned, now_ms())
        .await
        .unwrap();
    assert_eq!(id, bob.user_id);
    let signing_in = store.account_by_key(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(signing_in.banned, Some(banned));
    let (users, _) = store.list_users(None, 10, now_ms()).await.unwrap();
    assert_eq!(users[1].1.ban_reason.as_deref(), Some("spam"));
    store
        .unban_user(&admin, &name("bob"), now_ms())
        .await
        .unwrap();
    assert!(
        store
            .account_by_key(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .banned
            .is_none()
    );
    let again = store.unban_user(&admin, &name("bob"), now_ms()).await;
    refused(
        again,
        ErrorCode::NotFound,
        "bob is not banned from this server",
    );
    let nobody = store
        .ban_user(
            &admin,
            &name("nobody"),
            &ServerBan {
                until: 1,
                reason: None,
            },
            now_ms(),
        )
        .await;
    refused(nobody, ErrorCode::NotFound, "there is no user `nobody`");
    let (entries, _) = store.audit_page(&admin, None, None, 10).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["unban-user", "ban-user"]);
}

pub async fn users_come_in_pages_by_name(store: impl Store) {
    for (n, who) in ["dan", "alice", "carol", "bob"].into_iter().enumerate() {
        user(&store, who, n as u8 + 1).await;
    }
    let (first, more) = store.list_users(None, 3, now_ms()).await.unwrap();
    let listed: Vec<String> = first.iter().map(|(_, u)| u.name.to_string()).collect();
    assert_eq!(
        (listed, more),
        (vec!["alice".into(), "bob".into(), "carol".into()], true)
    );
    assert!(
        first
            .iter()
            .all(|(_, u)| u.machines == 1 && u.banned_until.is_none())
    );
    let after = first.last().map(|(_, u)| u.name.clone());
    let (rest, more) = store.list_users(after.as_ref(), 3, now_ms()).await.unwrap();
    assert_eq!(
        (rest.len(), rest[0].1.name.as_str(), more),
        (1, "dan", false)
    );
}

pub async fn the_audit_log_pages_newest_first_and_each_reader_sees_their_part(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let owner = actor(&alice, false);
    for n in 0..5 {
        let topic = ChannelAct::Topic {
            topic: format!("t{n}"),
        };
        act(&store, &owner, "general", topic).await.unwrap();
    }
    let general = name("general");
    let (page, more) = store
        .audit_page(&owner, Some(&general), None, 2)
        .await
        .unwrap();
    let details: Vec<&str> = page.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        more && details[0].contains("t4") && details[1].contains("t3"),
        "{details:?}"
    );
    let before = page.last().map(|e| e.id);
    let (rest, more) = store
        .audit_page(&owner, Some(&general), before, 10)
        .await
        .unwrap();
    assert_eq!((rest.len(), more), (3, false));
    assert!(rest.iter().all(|e| e.id < before.unwrap_or(0)));
    let as_bob = actor(&bob, false);
    let member = store.audit_page(&as_bob, Some(&general), None, 10).await;
    refused(member, ErrorCode::Forbidden, "may read its audit log");
    let (own, _) = store.audit_page(&as_bob, None, None, 10).await.unwrap();
    assert!(own.is_empty(), "a member sees only their own acts");
    let verdict = AuditRecord::new(&as_bob, now_ms(), "permission-verdict", "allowed".into());
    store.record_audit(&verdict).await.unwrap();
    let (own, _) = store.audit_page(&as_bob, None, None, 10).await.unwrap();
    assert_eq!(
        (own.len(), own[0].by.to_string()),
        (1, "bob/laptop/tui".into())
    );
    let (mine, _) = store.audit_page(&owner, None, None, 10).await.unwrap();
    assert_eq!(
        mine.len(),
        5,
        "an owner sees their channel's acts, not others' own acts"
    );
    let (all, _) = store
        .audit_page(&actor(&alice, true), None, None, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
}

pub async fn timed_bans_mutes_and_invites_run_out(store: impl Store) {
    /// How long each lasts: long enough to be seen in force on a slow machine.
    const WINDOW_MS: u64 = 1_000;
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    join(&store, &bob, "general").await;
    join(&store, &carol, "general").await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    let owner = actor(&alice, false);
    let kick = ChannelAct::Kick {
        target: KickTarget::User(name("bob")),
        ban_for_ms: Some(WINDOW_MS),
    };
    act(&store, &owner, "general", kick).await.unwrap();
    let general = name("general");
    let banned = store.join(&general, bob.user_id, &name("cli"), None).await;
    refused(banned, ErrorCode::Forbidden, "you are banned from #general");
    let mute = ChannelAct::Mute {
        user: name("carol"),
        for_ms: Some(WINDOW_MS),
    };
    act(&store, &owner, "general", mute).await.unwrap();
    refused(
        post(&store, &carol, "general", "c1", "hi").await,
        ErrorCode::Forbidden,
        "you are muted in #general",
    );
    let short = ChannelInvite {
        expires_at: now_ms() + i64::try_from(WINDOW_MS).unwrap(),
        ..invite("secret", "soon", 5)
    };
    store.create_invite(&owner, &short, now_ms()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(WINDOW_MS + 200)).await;
    join(&store, &bob, "general").await;
    post(&store, &carol, "general", "c1", "hi").await.unwrap();
    let late = store
        .join(&name("secret"), bob.user_id, &name("cli"), Some("soon"))
        .await;
    refused(
        late,
        ErrorCode::Forbidden,
        "that invite to #secret is not valid",
    );
}
