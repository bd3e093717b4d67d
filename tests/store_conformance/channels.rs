//! Channels and members: creation under the cap, the paged list, the visibility rules,
//! joining, leaving and the member list.

use conclave::net::protocol::{
    ChannelAct, ChannelInfo, ErrorCode, MAX_CHANNEL_PAGE, Role, Visibility,
};
use conclave::server::store::{NewChannel, Store};

use crate::support::{act, actor, channel, join, name, names, refused, setup, user};

fn listed(page: &[ChannelInfo]) -> Vec<String> {
    page.iter().map(|c| c.name.to_string()).collect()
}

pub async fn a_new_channel_has_its_creator_as_owner_and_only_member(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let new = NewChannel {
        name: name("general"),
        visibility: Visibility::Unlisted,
        creator: alice.user_id,
        max_per_creator: Some(5),
        agent_turns: 7,
    };
    let made = store.create_channel(&new).await.unwrap();
    assert_eq!(
        (made.name.as_str(), made.visibility),
        ("general", Visibility::Unlisted)
    );
    assert!(made.member && made.members == 1 && made.last_seq == 0);
    let details = store
        .describe_channel(&name("general"), alice.user_id)
        .await
        .unwrap();
    assert_eq!(details.owner, Some(name("alice")));
    assert_eq!((details.role, details.agent_turns), (Some(Role::Owner), 7));
}

pub async fn a_taken_name_is_not_available_whoever_asks(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    for taken in ["general", "secret"] {
        let new = NewChannel {
            name: name(taken),
            visibility: Visibility::Public,
            creator: bob.user_id,
            max_per_creator: None,
            agent_turns: 20,
        };
        let again = store.create_channel(&new).await;
        refused(
            again,
            ErrorCode::Conflict,
            &format!("the name #{taken} is not available"),
        );
    }
}

pub async fn channels_per_creator_are_capped(store: impl Store) {
    let alice = setup(&store).await;
    let capped = |channel: &str, max| NewChannel {
        name: name(channel),
        visibility: Visibility::Public,
        creator: alice.user_id,
        max_per_creator: max,
        agent_turns: 20,
    };
    // `setup` made #general: one more fits under a cap of two.
    store.create_channel(&capped("c1", Some(2))).await.unwrap();
    let over = store.create_channel(&capped("c2", Some(2))).await;
    refused(over, ErrorCode::RateLimited, "you have created 2 channels");
    store.create_channel(&capped("c2", None)).await.unwrap();
}

pub async fn the_channel_list_comes_in_pages_by_name(store: impl Store) {
    let alice = setup(&store).await;
    for n in 0..5 {
        channel(&store, &alice, &format!("c{n}"), Visibility::Public).await;
    }
    let (first, more) = store.list_channels(alice.user_id, None, 4).await.unwrap();
    assert_eq!(listed(&first), ["c0", "c1", "c2", "c3"]);
    assert!(
        first.iter().all(|c| c.members == 1 && c.member),
        "the creator is a member"
    );
    assert!(more);
    let last = first.last().map(|c| c.name.clone());
    let (second, more) = store
        .list_channels(alice.user_id, last.as_ref(), 4)
        .await
        .unwrap();
    assert_eq!(listed(&second), ["c4", "general"]);
    assert!(!more);
}

pub async fn private_channels_stay_hidden_and_unlisted_ones_open_to_their_name(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    channel(&store, &alice, "quiet", Visibility::Unlisted).await;
    let (seen, _) = store
        .list_channels(bob.user_id, None, MAX_CHANNEL_PAGE)
        .await
        .unwrap();
    assert_eq!(listed(&seen), ["general"]);
    assert!(!seen[0].member);
    let hidden = store
        .join(&name("secret"), bob.user_id, &name("cli"), None)
        .await;
    refused(hidden, ErrorCode::NotFound, "there is no channel #secret");
    let missing = store.visible_channel(&name("nowhere"), bob.user_id).await;
    let private = store.visible_channel(&name("secret"), bob.user_id).await;
    assert_eq!(
        private.unwrap_err().message.replace("secret", "X"),
        missing.unwrap_err().message.replace("nowhere", "X"),
        "a private channel looks exactly like a missing one"
    );
    let quiet = store
        .join(&name("quiet"), bob.user_id, &name("cli"), None)
        .await
        .unwrap();
    assert!(quiet.new_member);
    let (seen, _) = store
        .list_channels(bob.user_id, None, MAX_CHANNEL_PAGE)
        .await
        .unwrap();
    assert_eq!(
        listed(&seen),
        ["general", "quiet"],
        "a member sees what they are in"
    );
    let (all, _) = store
        .list_channels(alice.user_id, None, MAX_CHANNEL_PAGE)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}

pub async fn joining_twice_makes_one_membership_and_leaving_ends_it(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let general = name("general");
    let first = store
        .join(&general, bob.user_id, &name("cli"), None)
        .await
        .unwrap();
    assert!(first.new_member);
    assert_eq!(
        (first.channel.name.as_str(), first.read_seq),
        ("general", 0)
    );
    let second = store
        .join(&general, bob.user_id, &name("tui"), None)
        .await
        .unwrap();
    assert!(!second.new_member);
    let (id, members) = store.members(&general, alice.user_id, 10).await.unwrap();
    assert_eq!(
        (id, names(&members)),
        (first.channel.id, vec!["alice".into(), "bob".into()])
    );
    assert_eq!(store.leave(&general, bob.user_id).await.unwrap(), id);
    refused(
        store.leave(&general, bob.user_id).await,
        ErrorCode::NotFound,
        "you are not in #general",
    );
    assert!(!store.remove_member(id, bob.user_id).await.unwrap());
    join(&store, &bob, "general").await;
    assert!(store.remove_member(id, bob.user_id).await.unwrap());
    let (_, members) = store.members(&general, alice.user_id, 10).await.unwrap();
    assert_eq!(names(&members), ["alice"]);
}

pub async fn members_come_by_name_up_to_a_limit(store: impl Store) {
    let alice = setup(&store).await;
    for (n, who) in ["bob", "carol", "dan"].into_iter().enumerate() {
        let account = user(&store, who, 10 + n as u8).await;
        join(&store, &account, "general").await;
    }
    let (_, two) = store
        .members(&name("general"), alice.user_id, 2)
        .await
        .unwrap();
    assert_eq!(names(&two), ["alice", "bob"]);
    let (_, all) = store
        .members(&name("general"), alice.user_id, usize::MAX)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    channel(&store, &alice, "secret", Visibility::Private).await;
    let outsider = store.account_by_key(&[10; 32]).await.unwrap().unwrap();
    let hidden = store.members(&name("secret"), outsider.user_id, 10).await;
    refused(hidden, ErrorCode::NotFound, "there is no channel #secret");
}

pub async fn the_owner_leaving_hands_the_channel_to_a_moderator_first(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    join(&store, &bob, "general").await;
    join(&store, &carol, "general").await;
    let promote = ChannelAct::Role {
        user: name("carol"),
        role: Role::Moderator,
    };
    act(&store, &actor(&alice, false), "general", promote)
        .await
        .unwrap();
    store.leave(&name("general"), alice.user_id).await.unwrap();
    let details = store
        .describe_channel(&name("general"), bob.user_id)
        .await
        .unwrap();
    assert_eq!(
        details.owner,
        Some(name("carol")),
        "the moderator, though bob joined first"
    );
}
