//! One set of assertions run against the memory store and a real SQLite
//! file, so that the memory store the hub's tests use is known to behave
//! like the real ones in what the hub relies on.

use super::{
    Change, Changed, GuestClaim, MAX_REACTIONS, MemoryStore, NewMessage, PushSubscription,
    SearchAfter, SqliteStore, Store, StoreError, now_ms,
};
use crate::names::name_key;
use crate::protocol::Message;
use std::sync::Arc;

const KEEP_MS: i64 = 60_000;

fn msg(room: &str, author: &str, body: &str, nonce: Option<&str>) -> NewMessage {
    NewMessage {
        room: room.into(),
        author: author.into(),
        body: body.into(),
        nonce: nonce.map(str::to_string),
        ..Default::default()
    }
}

async fn append(store: &dyn Store, m: NewMessage) -> super::Appended {
    store
        .submit(m)
        .await
        .expect("queued")
        .await
        .expect("answered")
        .expect("stored")
}

fn ids(page: super::Page) -> Vec<i64> {
    page.messages.iter().map(|m| m.id).collect()
}

/// The message log: dense ids per room, one answer per (author, nonce),
/// pages and ranges.
async fn keeps_the_log(store: &dyn Store) {
    for (i, body) in ["a", "b", "c"].into_iter().enumerate() {
        let a = append(store, msg("r1", "ann", body, None)).await;
        assert_eq!((a.message.id, a.duplicate), (i as i64 + 1, false));
        assert_eq!(a.message.body, body);
    }
    assert_eq!(
        append(store, msg("r2", "ann", "x", None)).await.message.id,
        1
    );
    assert_eq!(store.last_id("r1").await.unwrap(), 3);
    assert_eq!(store.last_id("nowhere").await.unwrap(), 0);

    // A repeated nonce answers with the first send, wherever it was sent.
    let first = append(store, msg("r1", "ann", "hello", Some("n1"))).await;
    assert_eq!((first.message.id, first.duplicate), (4, false));
    for room in ["r1", "r2"] {
        let again = append(store, msg(room, "ann", "changed", Some("n1"))).await;
        assert!(again.duplicate);
        assert_eq!(again.message.id, 4);
        assert_eq!(again.message.room, "r1");
        assert_eq!(again.message.body, "hello");
        assert_eq!(again.message.ts, first.message.ts);
    }
    // The nonce is the author's own.
    let bob = append(store, msg("r1", "bob", "hi", Some("n1"))).await;
    assert_eq!((bob.message.id, bob.duplicate), (5, false));
    // Two sends with one nonce queued together: one is stored.
    let one = store
        .submit(msg("r1", "cy", "1", Some("n2")))
        .await
        .unwrap();
    let two = store
        .submit(msg("r1", "cy", "2", Some("n2")))
        .await
        .unwrap();
    let (one, two) = (one.await.unwrap().unwrap(), two.await.unwrap().unwrap());
    assert_eq!((one.message.id, one.duplicate), (6, false));
    assert_eq!(
        (two.message.id, two.duplicate, two.message.body.as_str()),
        (6, true, "1")
    );
    assert_eq!(store.last_id("r1").await.unwrap(), 6);
    assert_eq!(store.last_id("r2").await.unwrap(), 1);

    let newest = store.page_before("r1", None, 2).await.unwrap();
    assert!(newest.more);
    assert_eq!(ids(newest), [5, 6]);
    let oldest = store.page_before("r1", Some(3), 10).await.unwrap();
    assert!(!oldest.more);
    assert_eq!(ids(oldest), [1, 2]);
    let all = store.page_before("r1", None, 6).await.unwrap();
    assert!(!all.more);
    assert_eq!(all.messages.len(), 6);
    assert!(
        store
            .page_before("nowhere", None, 5)
            .await
            .unwrap()
            .messages
            .is_empty()
    );

    let range: Vec<i64> = store
        .range("r1", 1, 4, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(range, [2, 3, 4]);
    let capped: Vec<i64> = store
        .range("r1", 1, 6, 2)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(capped, [2, 3]);
    assert!(store.range("r1", 6, 9, 10).await.unwrap().is_empty());
}

/// Rooms: made by a send or on purpose, listed, direct ones apart, the
/// guests' empty ones expiring.
async fn keeps_rooms(store: &dyn Store) {
    for seeded in ["general", "random"] {
        assert!(store.room_exists(seeded).await.unwrap());
    }
    assert!(!store.room_exists("empty").await.unwrap());
    store.create_room("empty").await.unwrap();
    store.create_room("empty").await.unwrap();
    assert!(store.room_exists("empty").await.unwrap());
    assert_eq!(store.last_id("empty").await.unwrap(), 0);
    append(store, msg("busy", "ann", "hi", None)).await;
    assert!(store.room_exists("busy").await.unwrap());

    store.create_room("dm:ann:bob").await.unwrap();
    assert_eq!(store.dm_rooms("ann", 10).await.unwrap(), ["dm:ann:bob"]);
    assert_eq!(store.dm_rooms("bob", 10).await.unwrap(), ["dm:ann:bob"]);
    assert!(store.dm_rooms("an", 10).await.unwrap().is_empty());
    assert!(store.dm_rooms("Ann", 10).await.unwrap().is_empty());

    let public = store.public_rooms(100).await.unwrap();
    assert_eq!(
        public[0], "busy",
        "rooms with messages come first: {public:?}"
    );
    for name in ["general", "random", "empty"] {
        assert!(public.iter().any(|r| r == name), "{name} in {public:?}");
    }
    assert!(!public.iter().any(|r| r.starts_with("dm:")));
    assert_eq!(
        store.public_room_count().await.unwrap(),
        public.len() as i64
    );
    assert_eq!(store.public_rooms(2).await.unwrap().len(), 2);

    store.create_room_by("gone", "guest", true).await.unwrap();
    store.create_room_by("kept", "guest", true).await.unwrap();
    store.create_room_by("mine", "ann", false).await.unwrap();
    store.create_room_by("talked", "guest", true).await.unwrap();
    append(store, msg("talked", "guest", "hi", None)).await;
    // An existing room keeps its maker: "empty" was made by no guest.
    store.create_room_by("empty", "guest", true).await.unwrap();
    assert_eq!(
        store
            .expire_empty_rooms(now_ms() - 60_000, &[])
            .await
            .unwrap(),
        0,
        "rooms made since are kept"
    );
    let expired = store
        .expire_empty_rooms(now_ms() + 1_000, &["kept".to_string()])
        .await
        .unwrap();
    assert_eq!(expired, 1);
    for (room, exists) in [
        ("gone", false),
        ("kept", true),
        ("mine", true),
        ("talked", true),
        ("empty", true),
    ] {
        assert_eq!(store.room_exists(room).await.unwrap(), exists, "{room}");
    }
}

/// Accounts, tokens, guest names and settings.
async fn keeps_the_directory(store: &dyn Store) {
    assert!(store.create_account("Ann", "h1").await.unwrap());
    assert!(
        !store.create_account("ann", "h2").await.unwrap(),
        "same name key"
    );
    assert!(!store.create_account("Ann", "h2").await.unwrap());
    let ann = store.account("ANN").await.unwrap().expect("found by key");
    assert_eq!(
        (ann.name.as_str(), ann.password_hash.as_str()),
        ("Ann", "h1")
    );
    assert_eq!(ann.sessions_from_ms, 0);
    assert!(store.account("nobody").await.unwrap().is_none());
    assert!(store.set_password("Ann", "h2", 5).await.unwrap());
    assert!(!store.set_password("nobody", "h2", 5).await.unwrap());
    let ann = store.account("Ann").await.unwrap().unwrap();
    assert_eq!(
        (ann.password_hash.as_str(), ann.sessions_from_ms),
        ("h2", 5)
    );

    let laptop = store.create_token("Ann", "laptop", "hash1").await.unwrap();
    let phone = store.create_token("Ann", "phone", "hash2").await.unwrap();
    assert!(phone.id > laptop.id);
    assert_eq!(
        store.tokens("Ann").await.unwrap(),
        [phone.clone(), laptop.clone()]
    );
    assert_eq!(
        store.token_owner("hash1").await.unwrap().as_deref(),
        Some("Ann")
    );
    assert_eq!(store.revoke_token("bob", laptop.id).await.unwrap(), None);
    assert_eq!(
        store
            .revoke_token("Ann", laptop.id)
            .await
            .unwrap()
            .as_deref(),
        Some("hash1")
    );
    assert_eq!(store.revoke_token("Ann", laptop.id).await.unwrap(), None);
    assert_eq!(store.token_owner("hash1").await.unwrap(), None);
    assert_eq!(store.tokens("Ann").await.unwrap(), [phone]);

    let zed = name_key("Zed");
    let claim = |name: &'static str, holder: &'static str| async move {
        store
            .claim_guest_name(name, &name_key(name), holder, KEEP_MS, 2)
            .await
            .unwrap()
    };
    assert_eq!(claim("Zed", "a").await, GuestClaim::Claimed);
    assert_eq!(claim("zed", "b").await, GuestClaim::Taken);
    assert_eq!(claim("Zed", "a").await, GuestClaim::Claimed, "renewed");
    assert_eq!(claim("Ann", "a").await, GuestClaim::Taken, "an account's");
    assert_eq!(claim("Yan", "a").await, GuestClaim::Claimed);
    assert_eq!(claim("Xia", "a").await, GuestClaim::TooMany);
    let held = store.guest_name(&zed, "Zed").await.unwrap().unwrap();
    assert_eq!((held.holder.as_str(), held.has_dms), ("a", false));
    assert!(
        store
            .guest_name(&name_key("Xia"), "Xia")
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        !store
            .create_account_for_guest("Zed", &zed, "h", Some("b"), KEEP_MS)
            .await
            .unwrap(),
        "another browser keeps it"
    );
    assert!(
        store
            .create_account_for_guest("Zed", &zed, "h", Some("a"), KEEP_MS)
            .await
            .unwrap(),
        "its own browser makes it an account"
    );
    assert!(store.guest_name(&zed, "Zed").await.unwrap().is_none());
    assert!(store.account("Zed").await.unwrap().is_some());

    // A name with direct messages stays its holder's, however old.
    assert_eq!(claim("Dee", "c").await, GuestClaim::Claimed);
    store.create_room("dm:dee:zed").await.unwrap();
    let dee = store
        .guest_name(&name_key("Dee"), "Dee")
        .await
        .unwrap()
        .unwrap();
    assert!(dee.has_dms);
    assert_eq!(
        store
            .claim_guest_name("Dee", &name_key("Dee"), "d", -KEEP_MS, 2)
            .await
            .unwrap(),
        GuestClaim::Taken
    );

    assert_eq!(store.setting_or("secret", "v1").await.unwrap(), "v1");
    assert_eq!(store.setting_or("secret", "v2").await.unwrap(), "v1");
    store.ping().await.unwrap();
}

/// Private rooms: made once with their members, who are added and
/// removed; topics; group conversations found by each of their members.
async fn keeps_members(store: &dyn Store) {
    let members = vec!["bob".to_string(), "cat".to_string()];
    assert!(
        store
            .create_private_room("~x", "ann", "plans", &members)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_private_room("~x", "zed", "", &[])
            .await
            .unwrap()
    );
    assert_eq!(
        store.room_members("~x").await.unwrap(),
        ["ann", "bob", "cat"]
    );
    let meta = store.room_meta("~x").await.unwrap().expect("the room");
    assert_eq!(
        (meta.owner.as_deref(), meta.topic.as_str()),
        (Some("ann"), "plans")
    );
    assert!(store.room_meta("~none").await.unwrap().is_none());
    assert!(store.is_room_member("~x", "bob").await.unwrap());
    assert!(!store.is_room_member("~x", "Bob").await.unwrap());
    assert!(!store.is_room_member("~x", "zed").await.unwrap());
    assert!(store.add_room_member("~x", "zed").await.unwrap());
    assert!(!store.add_room_member("~x", "zed").await.unwrap());
    assert!(!store.add_room_member("~none", "zed").await.unwrap());
    assert!(store.remove_room_member("~x", "bob").await.unwrap());
    assert!(!store.remove_room_member("~x", "bob").await.unwrap());
    assert_eq!(store.private_rooms("zed", 10).await.unwrap(), ["~x"]);
    assert!(store.private_rooms("bob", 10).await.unwrap().is_empty());
    // Private rooms are not public ones.
    assert!(
        !store
            .public_rooms(100)
            .await
            .unwrap()
            .contains(&"~x".to_string())
    );
    let before = store.public_room_count().await.unwrap();
    store.create_room("pub").await.unwrap();
    assert_eq!(store.public_room_count().await.unwrap(), before + 1);

    assert!(store.set_topic("~x", "new plans").await.unwrap());
    assert!(!store.set_topic("~none", "x").await.unwrap());
    let topics = store
        .room_topics(&["~x".into(), "pub".into(), "~none".into()])
        .await
        .unwrap();
    assert_eq!(topics, [("~x".to_string(), "new plans".to_string())]);
    assert!(store.room_topics(&[]).await.unwrap().is_empty());

    store.create_room("dm:al_x:bo:cy").await.unwrap();
    for member in ["al_x", "bo", "cy"] {
        assert!(
            store
                .dm_rooms(member, 10)
                .await
                .unwrap()
                .contains(&"dm:al_x:bo:cy".to_string()),
            "{member}"
        );
    }
    // `_` is no wildcard, and a name within another is not it.
    for stranger in ["alx", "al", "b", "o:cy"] {
        assert!(
            store.dm_rooms(stranger, 10).await.unwrap().is_empty(),
            "{stranger}"
        );
    }
}

/// Push subscriptions: kept per endpoint, moved to whoever subscribes it
/// last, at most `keep` per account (the oldest go), none for a banned
/// account; the levels chosen in a room.
async fn keeps_push_subscriptions(store: &dyn Store) {
    use crate::protocol::NotifyLevel;
    assert!(store.create_account("Pia", "h").await.unwrap());
    assert!(store.create_account("Quin", "h").await.unwrap());
    let device = |endpoint: &str, account: &str, at: i64| PushSubscription {
        endpoint: endpoint.into(),
        account: account.into(),
        p256dh: "key".into(),
        auth: "secret".into(),
        previews: at % 2 == 0,
        label: "Firefox on Linux".into(),
        created_ms: at,
    };
    for (i, e) in ["e1", "e2", "e3"].iter().enumerate() {
        store
            .save_push(&device(e, "Pia", i as i64), 2)
            .await
            .unwrap();
    }
    let endpoints =
        |list: Vec<PushSubscription>| list.into_iter().map(|p| p.endpoint).collect::<Vec<_>>();
    assert_eq!(
        endpoints(store.pushes("Pia").await.unwrap()),
        ["e3", "e2"],
        "the oldest went"
    );
    assert_eq!(
        store.pushes("Pia").await.unwrap()[0],
        device("e3", "Pia", 2)
    );
    // The same browser, now signed in as Quin.
    store.save_push(&device("e2", "Quin", 5), 2).await.unwrap();
    assert_eq!(endpoints(store.pushes("Pia").await.unwrap()), ["e3"]);
    assert_eq!(endpoints(store.pushes("Quin").await.unwrap()), ["e2"]);
    assert_eq!(store.push_accounts().await.unwrap(), ["Pia", "Quin"]);
    assert!(!store.delete_push("Pia", "e2").await.unwrap(), "not Pia's");
    assert!(store.delete_push("Quin", "e2").await.unwrap());
    assert!(store.pushes("Quin").await.unwrap().is_empty());
    store.forget_push("e3").await.unwrap();
    store.forget_push("never-there").await.unwrap();
    assert!(store.pushes("Pia").await.unwrap().is_empty());

    store.save_push(&device("e4", "Quin", 6), 2).await.unwrap();
    store.set_banned("Quin", true).await.unwrap();
    assert!(
        store.pushes("Quin").await.unwrap().is_empty(),
        "none while banned"
    );
    assert!(
        store.push_accounts().await.unwrap().is_empty(),
        "Pia has none left, Quin is banned"
    );
    store.set_banned("Quin", false).await.unwrap();
    assert_eq!(endpoints(store.pushes("Quin").await.unwrap()), ["e4"]);

    store
        .set_notify("Pia", "general", NotifyLevel::All)
        .await
        .unwrap();
    store.mark_read("Quin", "general", 0).await.unwrap();
    assert_eq!(
        store.chosen_levels("general").await.unwrap(),
        [("Pia".to_string(), NotifyLevel::All)],
        "only chosen levels are listed"
    );
}

/// Files' records: uploads, what a send may attach, who may read a file,
/// totals, and the sweep.
async fn keeps_files(store: &dyn Store) {
    use crate::protocol::FileObject;
    let file = |c: char, size: u64| FileObject {
        id: c.to_string().repeat(64),
        name: format!("{c}.png"),
        size,
        mime: "image/png".into(),
        width: Some(4),
        height: Some(3),
    };
    let (a, b) = (file('a', 100), file('b', 50));
    let now = now_ms();
    store
        .save_upload(&a, "fay", Some("image/jpeg"), now)
        .await
        .unwrap();
    store.save_upload(&b, "fay", None, now).await.unwrap();
    // The same bytes from someone else: one file, two uploads.
    let mut a_again = a.clone();
    a_again.name = "mine.png".into();
    store.save_upload(&a_again, "gus", None, now).await.unwrap();
    assert_eq!(store.upload_total("fay").await.unwrap(), 150);
    assert_eq!(store.upload_total("gus").await.unwrap(), 100);
    let record = store.file(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (record.size, record.thumb_mime.as_deref()),
        (100, Some("image/jpeg"))
    );
    assert!(store.file(&"c".repeat(64)).await.unwrap().is_none());

    // Before it is sent, a file is its uploaders' only.
    let readers = store.file_readers(&a.id, Some("fay")).await.unwrap();
    assert!(readers.uploader && readers.rooms.is_empty());
    assert!(
        !store
            .file_readers(&b.id, Some("gus"))
            .await
            .unwrap()
            .uploader
    );
    let ids = vec![b.id.clone(), a.id.clone()];
    let got = store
        .attachable("fay", "files", &ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        vec![b.clone(), a.clone()],
        "in the order asked, with fay's names"
    );
    assert!(
        store
            .attachable("hal", "files", &ids)
            .await
            .unwrap()
            .is_none()
    );

    // Sent: the room decides; fay's upload is no longer pending.
    let mut m = msg("files", "fay", "look", Some("f1"));
    m.attachments = vec![b.clone(), a.clone()];
    let sent = append(store, m).await;
    assert_eq!(sent.message.attachments, vec![b.clone(), a.clone()]);
    let stored = store
        .message("files", sent.message.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attachments, vec![b.clone(), a.clone()]);
    let readers = store.file_readers(&b.id, Some("fay")).await.unwrap();
    assert_eq!(
        (readers.rooms, readers.uploader),
        (vec!["files".to_string()], false)
    );
    // Anyone in the room may send it on there, under its name there; not elsewhere.
    let again = store
        .attachable("hal", "files", std::slice::from_ref(&a.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again[0].name, "a.png");
    assert!(
        store
            .attachable("hal", "elsewhere", std::slice::from_ref(&b.id))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.upload_total("fay").await.unwrap(),
        150,
        "her message's files count"
    );

    // Nothing is swept that something refers to.
    assert!(
        store
            .sweep_files(now + 1, now + 1)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleted, the message lets go of its files; gus's upload went with the day.
    let deleted = change(store, "files", sent.message.id, delete("fay", false)).await;
    let (_, gone) = done(deleted);
    assert!(gone.attachments.is_empty());
    assert!(
        store
            .file_readers(&a.id, None)
            .await
            .unwrap()
            .rooms
            .is_empty()
    );
    let mut swept = store.sweep_files(now + 1, now + 1).await.unwrap();
    swept.sort();
    assert_eq!(swept, vec![a.id.clone(), b.id.clone()]);
    assert!(store.file(&a.id).await.unwrap().is_none());
    assert_eq!(store.upload_total("fay").await.unwrap(), 0);
}

async fn behaves_like_a_store(store: &dyn Store) {
    keeps_the_log(store).await;
    keeps_rooms(store).await;
    keeps_the_directory(store).await;
    keeps_team_accounts(store).await;
    keeps_members(store).await;
    keeps_push_subscriptions(store).await;
    keeps_files(store).await;
    keeps_changes(store).await;
    searches(store).await;
    finds_around(store).await;
}

async fn change(store: &dyn Store, room: &str, id: i64, change: Change) -> Changed {
    store.change(room, id, change).await.expect("answered")
}

fn edit(by: &str, body: &str) -> Change {
    Change::Edit {
        by: by.into(),
        body: body.into(),
        mentions: crate::protocol::find_mentions(body),
    }
}

fn react(by: &str, emoji: &str, on: bool) -> Change {
    Change::React {
        by: by.into(),
        emoji: emoji.into(),
        on,
    }
}

fn delete(by: &str, admin: bool) -> Change {
    Change::Delete {
        by: by.into(),
        admin,
    }
}

/// The revision and message of a stored change.
fn done(c: Changed) -> (i64, Message) {
    match c {
        Changed::Done { rev, message } => (rev, message),
        other => panic!("expected a stored change, got {other:?}"),
    }
}

/// Messages that change: the rules, revisions, `changes`, and every read
/// showing the message as it now stands.
async fn keeps_changes(store: &dyn Store) {
    let mut first = msg("talk", "ann", "hello @bob", Some("t1"));
    first.mentions = vec!["bob".into()];
    let first = append(store, first).await.message;
    assert_eq!(first.mentions, ["bob"]);
    let mut reply = msg("talk", "bob", "hi ann", None);
    reply.reply_to = Some(first.id);
    let reply = append(store, reply).await.message;
    assert_eq!(reply.reply_to, Some(first.id));
    append(store, msg("talk", "ann", "third", None)).await;
    append(store, msg("talk-2", "ann", "elsewhere", None)).await;
    let stored = store.message("talk", reply.id).await.unwrap().unwrap();
    assert_eq!((stored.reply_to, stored.body.as_str()), (Some(1), "hi ann"));
    let stored = store.message("talk", first.id).await.unwrap().unwrap();
    assert_eq!(stored.mentions, ["bob"]);
    assert!(store.message("talk", 99).await.unwrap().is_none());
    assert!(store.message("nowhere", 1).await.unwrap().is_none());
    assert_eq!(store.last_rev("talk").await.unwrap(), 0);
    assert_eq!(store.last_rev("nowhere").await.unwrap(), 0);
    assert!(store.changes("talk", 0, 10, 10).await.unwrap().is_empty());

    // Not found.
    for (room, id) in [("talk", 99), ("talk", 0), ("nowhere", 1)] {
        assert_eq!(
            change(store, room, id, edit("ann", "x")).await,
            Changed::NotFound,
            "{room} {id}"
        );
    }

    // Edits: the author only; the same body is no change.
    let mut revs = Vec::new();
    assert_eq!(
        change(store, "talk", 1, edit("bob", "mine now")).await,
        Changed::NotAuthor
    );
    assert_eq!(
        change(store, "talk", 1, edit("ann", "hello @bob")).await,
        Changed::Unchanged(store.message("talk", 1).await.unwrap().unwrap())
    );
    let (rev, edited) = done(change(store, "talk", 1, edit("ann", "hello @cy")).await);
    revs.push(rev);
    assert_eq!(rev, 1);
    assert_eq!(edited.body, "hello @cy");
    assert_eq!(edited.mentions, ["cy"]);
    assert!(edited.edited.is_some());
    assert_eq!((edited.id, edited.ts.as_str()), (1, first.ts.as_str()));
    assert_eq!(store.message("talk", 1).await.unwrap().unwrap(), edited);

    // Reactions: names in the order they came; on twice or off when not
    // on is no change.
    let (rev, m) = done(change(store, "talk", 1, react("bob", "👍", true)).await);
    revs.push(rev);
    let (rev, m2) = done(change(store, "talk", 1, react("cy", "👍", true)).await);
    revs.push(rev);
    assert_eq!(m.reactions["👍"], ["bob"]);
    assert_eq!(m2.reactions["👍"], ["bob", "cy"]);
    assert_eq!(m2.edited, edited.edited, "a reaction is no edit");
    assert_eq!(
        change(store, "talk", 1, react("bob", "👍", true)).await,
        Changed::Unchanged(m2.clone())
    );
    assert_eq!(
        change(store, "talk", 1, react("dan", "👍", false)).await,
        Changed::Unchanged(m2.clone())
    );
    assert_eq!(store.last_rev("talk").await.unwrap(), 3);

    // At most MAX_REACTIONS different emoji.
    for i in 0..MAX_REACTIONS {
        let (rev, _) = done(change(store, "talk", 3, react("bob", &format!("e{i}"), true)).await);
        revs.push(rev);
    }
    assert_eq!(
        change(store, "talk", 3, react("bob", "one too many", true)).await,
        Changed::TooManyReactions
    );
    let (rev, m3) = done(change(store, "talk", 3, react("cy", "e0", true)).await);
    revs.push(rev);
    assert_eq!(m3.reactions.len(), MAX_REACTIONS);
    assert_eq!(m3.reactions["e0"], ["bob", "cy"]);
    let (rev, m3) = done(change(store, "talk", 3, react("bob", "e1", false)).await);
    revs.push(rev);
    assert!(!m3.reactions.contains_key("e1"));

    // Deletes: the author or an admin; nothing kept but id, author, time.
    assert_eq!(
        change(store, "talk", 2, delete("cy", false)).await,
        Changed::NotAuthor
    );
    change(store, "talk", 2, react("ann", "👍", true)).await;
    revs.push(store.last_rev("talk").await.unwrap());
    let (rev, gone) = done(change(store, "talk", 2, delete("cy", true)).await);
    revs.push(rev);
    assert!(gone.deleted);
    assert_eq!(
        (gone.id, gone.author.as_str(), gone.ts.as_str()),
        (2, "bob", reply.ts.as_str())
    );
    assert!(gone.body.is_empty() && gone.mentions.is_empty() && gone.reactions.is_empty());
    assert_eq!((gone.reply_to, gone.edited.as_deref()), (None, None));
    assert_eq!(store.message("talk", 2).await.unwrap().unwrap(), gone);
    assert_eq!(
        change(store, "talk", 2, edit("bob", "back")).await,
        Changed::Deleted
    );
    assert_eq!(
        change(store, "talk", 2, react("ann", "👍", false)).await,
        Changed::Deleted
    );
    assert_eq!(
        change(store, "talk", 2, delete("bob", false)).await,
        Changed::Unchanged(gone.clone())
    );
    let (rev, own) = done(change(store, "talk", 3, delete("ann", false)).await);
    revs.push(rev);
    assert!(own.deleted && own.reactions.is_empty());

    // One revision per stored change, strictly increasing, shared by all
    // kinds of change; another room counts its own.
    assert_eq!(revs, (1..=revs.len() as i64).collect::<Vec<_>>());
    let last = store.last_rev("talk").await.unwrap();
    assert_eq!(last, revs.len() as i64);
    let (other, _) = done(change(store, "talk-2", 1, react("bob", "🎉", true)).await);
    assert_eq!(other, 1);
    assert_eq!(store.last_rev("talk").await.unwrap(), last);

    // `changes`: each message changed after a revision once, with its last
    // revision, in revision order, at or below `upto`.
    let all = store.changes("talk", 0, 10, 100).await.unwrap();
    let got: Vec<(i64, i64)> = all.iter().map(|(rev, m)| (*rev, m.id)).collect();
    assert_eq!(got, [(3, 1), (last - 1, 2), (last, 3)]);
    for (rev, m) in &all {
        assert_eq!(Some(m), store.message("talk", m.id).await.unwrap().as_ref());
        assert!(*rev > 0);
    }
    assert_eq!(
        store.changes("talk", 3, 10, 100).await.unwrap().len(),
        2,
        "after rev 3"
    );
    assert_eq!(store.changes("talk", last, 10, 100).await.unwrap().len(), 0);
    let upto: Vec<i64> = store
        .changes("talk", 0, 2, 100)
        .await
        .unwrap()
        .iter()
        .map(|(_, m)| m.id)
        .collect();
    assert_eq!(upto, [1, 2]);
    let capped = store.changes("talk", 0, 10, 1).await.unwrap();
    assert_eq!(capped.len(), 1);
    assert_eq!(capped[0].1.id, 1);

    // Every read shows the message as it now stands.
    let page = store.page_before("talk", None, 10).await.unwrap();
    assert_eq!(
        page.messages,
        [
            store.message("talk", 1).await.unwrap().unwrap(),
            gone.clone(),
            own.clone()
        ]
    );
    assert_eq!(page.messages[0].reactions["👍"], ["bob", "cy"]);
    assert_eq!(store.range("talk", 0, 3, 10).await.unwrap(), page.messages);
    // A retried send finds its message as it now stands.
    let again = append(store, msg("talk", "ann", "hello @bob", Some("t1"))).await;
    assert!(again.duplicate);
    assert_eq!(again.message, page.messages[0]);
}

/// A change queued right behind the send it changes (one writer's queue:
/// SQLite's, and the memory store's order) finds its message. PostgreSQL
/// changes do not wait for the node's pending sends: no one knows a
/// message's id before its send is acknowledged.
async fn changes_follow_sends_in_order(store: &dyn Store) {
    let pending = store
        .submit(msg("queue", "bob", "quick", None))
        .await
        .unwrap();
    let (rev, quick) = done(change(store, "queue", 1, edit("bob", "quicker")).await);
    assert_eq!(pending.await.unwrap().unwrap().message.id, 1);
    assert_eq!((rev, quick.body.as_str()), (1, "quicker"));
    assert_eq!(store.message("queue", 1).await.unwrap().unwrap(), quick);
}

/// The results of `search`, ordered as the store orders them.
async fn search_ids(store: &dyn Store, rooms: &[&str], query: &str) -> Vec<(String, i64)> {
    let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    let found = store.search(&rooms, query, None, 100).await.expect(query);
    assert!(found.next.is_none(), "{query}: one page");
    found
        .messages
        .iter()
        .map(|m| (m.room.clone(), m.id))
        .collect()
}

/// `(room, id)` pairs newest first, as search orders them, of messages in
/// the order they were stored (across rooms).
fn newest_first(stored_in_order: &[Message]) -> Vec<(String, i64)> {
    stored_in_order
        .iter()
        .rev()
        .map(|m| (m.room.clone(), m.id))
        .collect()
}

/// Search: without case or accents, typed syntax as text, current words
/// only, the given rooms only, pages without gaps or repeats.
async fn searches(store: &dyn Store) {
    let mut sent = Vec::new();
    for (room, body) in [
        ("s1", "Un café au lait, s'il vous plaît"),
        ("s1", "cafe without accent"),
        ("s1", "L'ÉTÉ sera chaud"),
        ("s1", "summer is hot, ete"),
        ("s2", "CAFÉ in capitals"),
        ("s2", r#"a quote "NEAR" * - AND ( here"#),
        ("s3", "café in a room nobody asked for"),
    ] {
        sent.push(append(store, msg(room, "ann", body, None)).await.message);
    }
    let of = |picks: &[usize]| -> Vec<(String, i64)> {
        let mut picks = picks.to_vec();
        picks.sort();
        let chosen: Vec<Message> = picks.iter().map(|&i| sent[i].clone()).collect();
        newest_first(&chosen)
    };
    let s12 = ["s1", "s2"];
    for q in [
        "cafe", "café", "CAFÉ", "Cafe", "cafe*", "-cafe", "\"cafe\"", "cafe:",
    ] {
        assert_eq!(search_ids(store, &s12, q).await, of(&[0, 1, 4]), "{q}");
    }
    for q in ["ete", "été", "ÉTÉ", "ETE", "e\u{301}te\u{301}"] {
        assert_eq!(search_ids(store, &s12, q).await, of(&[2, 3]), "{q}");
    }
    assert_eq!(search_ids(store, &s12, "UN CAFE").await, of(&[0]));
    assert_eq!(search_ids(store, &s12, "lait café").await, of(&[0]));
    assert_eq!(search_ids(store, &s12, "plait").await, of(&[0]));
    // Search syntax typed by a person is text: never an operator, never an
    // error.
    assert_eq!(
        search_ids(store, &s12, r#""NEAR" * - AND ("#).await,
        of(&[5])
    );
    for q in [
        "\"",
        "*",
        "(",
        "-",
        "NEAR(cafe lait)",
        "cafe OR nothing",
        "cafe AND NOT lait",
        "lait NOT cafe",
        "^cafe",
        "body:cafe",
        "cafe + )",
        "",
        "   ",
        "👍",
        "\0",
    ] {
        let found = search_ids(store, &s12, q).await;
        assert!(
            found.iter().all(|(room, _)| room != "s3"),
            "{q}: only the given rooms"
        );
        if [
            "NEAR(cafe lait)",
            "cafe OR nothing",
            "\"",
            "*",
            "(",
            "",
            "👍",
        ]
        .contains(&q)
        {
            assert!(found.is_empty(), "{q}: {found:?}");
        }
    }
    // A 10 KB query does no harm.
    let long = "cafe ".repeat(2_000);
    assert_eq!(search_ids(store, &s12, &long).await, of(&[0, 1, 4]));
    let many: String = (0..2_000).map(|i| format!("w{i} ")).collect();
    assert!(search_ids(store, &s12, &many).await.is_empty());
    assert!(
        search_ids(store, &s12, &"a".repeat(10_000))
            .await
            .is_empty()
    );
    let quotes = "\"".repeat(10_000);
    assert!(search_ids(store, &s12, &quotes).await.is_empty());

    // Only the given rooms.
    assert_eq!(search_ids(store, &["s3"], "cafe").await, of(&[6]));
    assert_eq!(
        search_ids(store, &["s1", "s2", "s3"], "cafe").await,
        of(&[0, 1, 4, 6])
    );
    assert!(search_ids(store, &[], "cafe").await.is_empty());
    // Many rooms (SQLite then skips others' messages instead of having the
    // index intersect the rooms): the same answers.
    let many_rooms: Vec<String> = (0..20).map(|i| format!("empty{i}")).collect();
    let mut wide: Vec<&str> = many_rooms.iter().map(String::as_str).collect();
    wide.extend(s12);
    assert_eq!(search_ids(store, &wide, "cafe").await, of(&[0, 1, 4]));
    assert_eq!(search_ids(store, &wide, "ete").await, of(&[2, 3]));
    assert!(search_ids(store, &["nowhere"], "cafe").await.is_empty());

    // Edited-away words are gone, edited-in ones found; a deleted
    // message's words are gone for good.
    done(change(store, "s1", 2, edit("ann", "tea instead")).await);
    assert_eq!(search_ids(store, &s12, "cafe").await, of(&[0, 4]));
    assert_eq!(search_ids(store, &s12, "tea").await, of(&[1]));
    assert!(search_ids(store, &s12, "accent").await.is_empty());
    done(change(store, "s1", 1, delete("ann", false)).await);
    assert_eq!(search_ids(store, &s12, "cafe").await, of(&[4]));
    assert!(search_ids(store, &s12, "lait").await.is_empty());
    // A reaction leaves the words alone.
    done(change(store, "s2", 1, react("bob", "☕", true)).await);
    let found = store
        .search(&["s2".to_string()], "capitals", None, 10)
        .await
        .unwrap();
    assert_eq!(found.messages.len(), 1);
    assert_eq!(found.messages[0].reactions["☕"], ["bob"]);

    // Pages: every result once, newest first, `next` while pages are full.
    let mut matching = Vec::new();
    for i in 0..25 {
        let m = append(store, msg("p1", "ann", &format!("page word {i}"), None)).await;
        matching.push(m.message);
        if i % 3 == 0 {
            let m = append(store, msg("p2", "bob", &format!("another page {i}"), None)).await;
            matching.push(m.message);
        }
        if i % 4 == 0 {
            append(store, msg("p3", "cy", &format!("no match {i}"), None)).await;
        }
    }
    let rooms: Vec<String> = ["p1", "p2", "p3"].map(String::from).to_vec();
    let whole = store.search(&rooms, "page", None, 100).await.unwrap();
    assert_eq!(whole.messages.len(), 34);
    assert!(whole.next.is_none());
    assert_eq!(
        whole
            .messages
            .iter()
            .map(|m| (m.room.clone(), m.id))
            .collect::<Vec<_>>(),
        newest_first(&matching)
    );
    for size in [1, 5, 7, 34] {
        let mut paged: Vec<Message> = Vec::new();
        let mut after: Option<SearchAfter> = None;
        loop {
            let page = store
                .search(&rooms, "PAGE", after.as_ref(), size)
                .await
                .unwrap();
            assert!(page.messages.len() <= size);
            assert_eq!(page.next.is_some(), page.messages.len() == size);
            paged.extend(page.messages);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            assert!(paged.len() <= 34, "pages of {size} repeat results");
        }
        assert_eq!(paged, whole.messages, "pages of {size}");
    }
}

/// `around`: about half before, the message, the rest after.
async fn finds_around(store: &dyn Store) {
    for i in 1..=30 {
        append(store, msg("long", "ann", &format!("m{i}"), None)).await;
    }
    let around = |id: i64, limit: usize| async move {
        let a = store.around("long", id, limit).await.unwrap();
        let ids: Vec<i64> = a.messages.iter().map(|m| m.id).collect();
        (ids, a.more_before, a.more_after)
    };
    assert_eq!(around(15, 7).await, ((12..=18).collect(), true, true));
    assert_eq!(around(15, 6).await, ((13..=18).collect(), true, true));
    assert_eq!(around(1, 7).await, ((1..=7).collect(), false, true));
    assert_eq!(around(2, 7).await, ((1..=7).collect(), false, true));
    assert_eq!(around(30, 7).await, ((24..=30).collect(), true, false));
    assert_eq!(around(29, 7).await, ((24..=30).collect(), true, false));
    assert_eq!(around(15, 100).await, ((1..=30).collect(), false, false));
    assert_eq!(around(4, 1).await, (vec![4], true, true));
    let short = store.around("talk-2", 1, 7).await.unwrap();
    assert_eq!(short.messages.len(), 1);
    assert!(!short.more_before && !short.more_after);
    assert_eq!(short.messages[0].reactions["🎉"], ["bob"]);
    assert!(
        store
            .around("nowhere", 1, 7)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

/// Team accounts (issue 14), after [`keeps_the_directory`] made `Ann`, the
/// first account: roles, the registration gate and invites, bans, last
/// seen, guest blocks.
async fn keeps_team_accounts(store: &dyn Store) {
    use super::{AccountChange, Gate, InviteProblem, Registered, Role};
    let ann = store.account("Ann").await.unwrap().unwrap();
    assert_eq!(
        (ann.role, ann.banned),
        (Role::Admin, false),
        "the first account"
    );
    assert!(store.accounts_exist().await.unwrap());
    let register = |name: &'static str, gate| async move {
        store
            .register_account(name, &name_key(name), "h", None, KEEP_MS, gate)
            .await
            .unwrap()
    };
    assert_eq!(register("Bo", Gate::Closed).await, Registered::Closed);
    assert_eq!(
        register("Bo", Gate::Invite(None)).await,
        Registered::InviteNeeded
    );
    assert_eq!(
        register("Bo", Gate::Invite(Some("nope"))).await,
        Registered::BadInvite(InviteProblem::Unknown)
    );
    let now = now_ms();
    store
        .create_invite("one", "Ann", 1, now + 60_000)
        .await
        .unwrap();
    store.create_invite("old", "Ann", 1, now - 1).await.unwrap();
    store
        .create_invite("gone", "Ann", 3, now + 60_000)
        .await
        .unwrap();
    assert!(store.revoke_invite("gone").await.unwrap());
    assert!(!store.revoke_invite("gone").await.unwrap());
    let live: Vec<String> = store
        .live_invites()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.code)
        .collect();
    assert_eq!(live, vec!["one".to_string()]);
    // A taken name does not use the invite.
    assert_eq!(
        register("ann", Gate::Invite(Some("one"))).await,
        Registered::Taken
    );
    assert_eq!(
        register("Bo", Gate::Invite(Some("one"))).await,
        Registered::Created(Role::Member)
    );
    assert_eq!(
        register("Cy", Gate::Invite(Some("one"))).await,
        Registered::BadInvite(InviteProblem::UsedUp)
    );
    assert_eq!(
        register("Cy", Gate::Invite(Some("old"))).await,
        Registered::BadInvite(InviteProblem::Expired)
    );
    assert_eq!(
        register("Cy", Gate::Invite(Some("gone"))).await,
        Registered::BadInvite(InviteProblem::Revoked)
    );
    let one = store.invite("one").await.unwrap().unwrap();
    assert_eq!((one.uses_left, one.used), (0, 1));
    assert_eq!(
        register("Cy", Gate::Open).await,
        Registered::Created(Role::Member)
    );

    // Never no admin: neither demoted nor banned while the only one.
    assert_eq!(
        store.set_role("Ann", Role::Member).await.unwrap(),
        AccountChange::LastAdmin
    );
    assert_eq!(
        store.set_banned("Ann", true).await.unwrap(),
        AccountChange::LastAdmin
    );
    assert_eq!(
        store.set_role("nobody", Role::Admin).await.unwrap(),
        AccountChange::NoSuchAccount
    );
    assert_eq!(
        store.set_role("Bo", Role::Admin).await.unwrap(),
        AccountChange::Done
    );
    assert_eq!(
        store.set_role("Ann", Role::Member).await.unwrap(),
        AccountChange::Done
    );
    assert_eq!(
        store.account("Ann").await.unwrap().unwrap().role,
        Role::Member
    );

    // A ban keeps the name, stops the tokens, and is found by the watchers.
    store.create_token("Cy", "t", "cy-hash").await.unwrap();
    assert_eq!(
        store.token_owner("cy-hash").await.unwrap().as_deref(),
        Some("Cy")
    );
    let before = now_ms();
    assert_eq!(
        store.set_banned("Cy", true).await.unwrap(),
        AccountChange::Done
    );
    assert!(store.account("Cy").await.unwrap().unwrap().banned);
    assert_eq!(store.token_owner("cy-hash").await.unwrap(), None);
    assert_eq!(
        store.banned_since(before - 1000).await.unwrap(),
        vec!["Cy".to_string()]
    );
    assert!(
        store
            .banned_since(now_ms() + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(register("cy", Gate::Open).await, Registered::Taken);
    assert_eq!(
        store.set_banned("Cy", false).await.unwrap(),
        AccountChange::Done
    );
    assert_eq!(
        store.token_owner("cy-hash").await.unwrap().as_deref(),
        Some("Cy")
    );

    store.touch_seen("Bo").await.unwrap();
    // Those made here, among the earlier tests' accounts, in name-key order.
    let list: Vec<_> = store
        .account_list()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| ["Ann", "Bo", "Cy"].contains(&a.name.as_str()))
        .collect();
    let names: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Ann", "Bo", "Cy"]);
    assert!(list[1].last_seen_ms.is_some_and(|t| t >= before - 1000));
    assert!(list[2].last_seen_ms.is_none());
    assert_eq!(list[1].role, Role::Admin);

    store
        .block_guest(&name_key("Eve"), now_ms() + 60_000)
        .await
        .unwrap();
    store
        .block_guest(&name_key("Old"), now_ms() - 1)
        .await
        .unwrap();
    assert!(store.guest_blocked(&name_key("EVE")).await.unwrap());
    assert!(!store.guest_blocked(&name_key("Old")).await.unwrap());
    assert!(!store.guest_blocked(&name_key("Zed")).await.unwrap());
}

#[tokio::test]
async fn the_memory_store_behaves_like_a_store() {
    let store: Arc<dyn Store> = MemoryStore::new();
    behaves_like_a_store(&*store).await;
    changes_follow_sends_in_order(&*store).await;
}

#[tokio::test]
async fn the_sqlite_store_behaves_like_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    behaves_like_a_store(&store).await;
    changes_follow_sends_in_order(&store).await;
    store.close().await;
}

/// The SQLite index is derived data in a file of its own: lost, it is made
/// again from the log, with the edits and deletions made since.
#[tokio::test]
async fn the_sqlite_search_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let path = path.to_str().unwrap();
    let store = SqliteStore::open(path).await.unwrap();
    for body in ["un café", "a typo", "gone soon", "a rare word"] {
        append(&store, msg("idx", "ann", body, None)).await;
    }
    assert_eq!(
        search_ids(&store, &["idx"], "typo").await,
        [("idx".into(), 2)]
    );
    done(change(&store, "idx", 2, edit("ann", "fixed")).await);
    done(change(&store, "idx", 3, delete("ann", false)).await);
    assert!(search_ids(&store, &["idx"], "typo").await.is_empty());
    assert_eq!(
        search_ids(&store, &["idx"], "fixed").await,
        [("idx".into(), 2)]
    );
    store.close().await;
    drop(store);
    // The follower lets go of the file once the writer has stopped.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}.search{suffix}"));
    }
    let store = SqliteStore::open(path).await.unwrap();
    assert_eq!(
        search_ids(&store, &["idx"], "cafe").await,
        [("idx".into(), 1)]
    );
    assert_eq!(
        search_ids(&store, &["idx"], "fixed").await,
        [("idx".into(), 2)]
    );
    assert!(search_ids(&store, &["idx"], "typo").await.is_empty());
    assert!(search_ids(&store, &["idx"], "gone").await.is_empty());
    // And it goes on following: an edit after the rebuild.
    done(change(&store, "idx", 4, edit("ann", "a common word")).await);
    assert!(search_ids(&store, &["idx"], "rare").await.is_empty());
    assert_eq!(
        search_ids(&store, &["idx"], "common").await,
        [("idx".into(), 4)]
    );
    store.close().await;
}

/// A database put back from a backup is behind its index: the index is
/// made again, so that a new message taking a lost one's key is found by
/// its own words only.
#[tokio::test]
async fn the_sqlite_search_index_follows_a_restored_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let path = path.to_str().unwrap();
    let copy = dir.path().join("copy.db");
    let store = SqliteStore::open(path).await.unwrap();
    append(&store, msg("idx", "ann", "kept", None)).await;
    super::backup::backup(&format!("sqlite://{path}"), &copy)
        .await
        .unwrap();
    append(&store, msg("idx", "ann", "zebra", None)).await;
    done(change(&store, "idx", 1, edit("ann", "kept still")).await);
    assert_eq!(
        search_ids(&store, &["idx"], "zebra").await,
        [("idx".into(), 2)]
    );
    store.close().await;
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    std::fs::copy(&copy, path).unwrap();
    let store = SqliteStore::open(path).await.unwrap();
    append(&store, msg("idx", "ann", "apple", None)).await;
    assert!(search_ids(&store, &["idx"], "zebra").await.is_empty());
    assert!(search_ids(&store, &["idx"], "still").await.is_empty());
    assert_eq!(
        search_ids(&store, &["idx"], "apple").await,
        [("idx".into(), 2)]
    );
    assert_eq!(
        search_ids(&store, &["idx"], "kept").await,
        [("idx".into(), 1)]
    );
    done(change(&store, "idx", 1, edit("ann", "kept again")).await);
    assert_eq!(
        search_ids(&store, &["idx"], "again").await,
        [("idx".into(), 1)]
    );
    store.close().await;
}

#[tokio::test]
async fn the_memory_store_can_play_down() {
    let store = MemoryStore::new();
    store.set_unavailable(true);
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.last_id("general").await,
        Err(StoreError::Unavailable(_))
    ));
    let pending = store
        .submit(msg("general", "ann", "hi", None))
        .await
        .unwrap();
    assert!(matches!(
        pending.await.unwrap(),
        Err(StoreError::Unavailable(_))
    ));
    store.set_unavailable(false);
    store.ping().await.unwrap();
    assert_eq!(
        append(&*store, msg("general", "ann", "hi", None))
            .await
            .message
            .id,
        1
    );
}

/// A fresh database on the server named by `CAUSERIE_TEST_POSTGRES`, or
/// `None` (with a note) without it. Drop it with [`drop_postgres`].
async fn fresh_postgres(test: &str) -> Option<(sqlx::PgConnection, String, String)> {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("CAUSERIE_TEST_POSTGRES") else {
        eprintln!("{test}: skipped on PostgreSQL (set CAUSERIE_TEST_POSTGRES=postgres://...)");
        return None;
    };
    // Named as the black-box tests name theirs, so that their sweep clears
    // a database a failed run leaves behind.
    let name = format!(
        "causerie_t_{}_{:08x}",
        now_ms() / 1000,
        rand::random::<u32>()
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = base.rsplit_once('/').expect("postgres://HOST/DATABASE");
    let url = format!("{server}/{name}");
    Some((conn, name, url))
}

async fn drop_postgres(mut admin: sqlx::PgConnection, name: &str) {
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// The same on PostgreSQL, in a fresh database of the server named by
/// `CAUSERIE_TEST_POSTGRES` (skipped, with a note, without it).
#[tokio::test]
async fn the_postgres_store_behaves_like_a_store() {
    let Some((admin, name, url)) = fresh_postgres("the_postgres_store_behaves_like_a_store").await
    else {
        return;
    };
    let store = super::PostgresStore::open(&url).await.unwrap();
    behaves_like_a_store(&store).await;
    store.close().await;
    drop_postgres(admin, &name).await;
}

/// Another node's writer, as this test plays it: a transaction holding the
/// room's row lock, as every writer does while it appends there.
struct OtherWriter {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pid: i32,
}

impl OtherWriter {
    /// Opens a connection and waits for `room`'s row lock on it; `queued`
    /// hears the backend's pid before the wait starts.
    async fn lock(
        pool: sqlx::PgPool,
        room: &'static str,
        queued: tokio::sync::oneshot::Sender<i32>,
    ) -> OtherWriter {
        let mut tx = pool.begin().await.unwrap();
        let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let _ = queued.send(pid);
        sqlx::query("SELECT last_id FROM rooms WHERE name = $1 FOR UPDATE")
            .bind(room)
            .execute(&mut *tx)
            .await
            .unwrap();
        OtherWriter { tx, pid }
    }

    /// Stores (author, nonce) under the next id unless it is stored
    /// already, and commits.
    async fn store_once(mut self, room: &str, author: &str, nonce: &str) {
        sqlx::query(
            "WITH m AS (INSERT INTO messages (room, id, author, body, ts_ms, nonce) \
             SELECT name, last_id + 1, $2, 'from the other node', $4, $3 FROM rooms \
             WHERE name = $1 AND NOT EXISTS \
               (SELECT 1 FROM messages WHERE author = $2 AND nonce = $3) \
             RETURNING id) \
             UPDATE rooms SET last_id = m.id FROM m WHERE name = $1",
        )
        .bind(room)
        .bind(author)
        .bind(nonce)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .unwrap();
        self.tx.commit().await.unwrap();
    }
}

/// Waits until `sql` (one integer parameter, one boolean answer) holds or
/// `done` does; answers whether `sql` held.
async fn until(
    pool: &sqlx::PgPool,
    sql: &str,
    pid: i32,
    done: impl Fn() -> bool,
    what: &str,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (yes,): (bool,) = sqlx::query_as(sql).bind(pid).fetch_one(pool).await.unwrap();
        if yes {
            return true;
        }
        if done() {
            return false;
        }
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Another node stores, one after the other, the sends of a batch this
/// node's writer is about to store (a client retrying on both at once),
/// each time just before the writer gets the room: every send is answered,
/// those the other node stored with its message, the rest stored once,
/// and no message of the batch fails for the others' duplicates.
#[tokio::test]
async fn a_batch_racing_another_node_for_its_nonces_is_stored_once() {
    let Some((admin, name, url)) =
        fresh_postgres("a_batch_racing_another_node_for_its_nonces_is_stored_once").await
    else {
        return;
    };
    let store = super::PostgresStore::open(&url).await.unwrap();
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    const NONCES: usize = 6;

    let (pid_tx, _) = tokio::sync::oneshot::channel();
    let mut holder = OtherWriter::lock(other.clone(), "general", pid_tx).await;
    // Queued together (nothing yields in between), so written as one batch.
    let mut pending = Vec::new();
    for i in 0..NONCES {
        let m = msg(
            "general",
            "ann",
            &format!("send {i}"),
            Some(&format!("n{i}")),
        );
        pending.push(store.submit(m).await.unwrap());
    }
    pending.push(
        store
            .submit(msg("general", "bob", "no nonce", None))
            .await
            .unwrap(),
    );
    let answers = tokio::spawn(async move {
        let mut out = Vec::new();
        for p in pending {
            out.push(p.await.expect("answered"));
        }
        out
    });

    let mut taken = 0;
    for i in 0..NONCES {
        // This node's writer waits for the room behind `holder`, unless it
        // has answered its whole batch.
        let waits = until(
            &other,
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
             WHERE application_name = 'causerie' AND $1 = ANY (pg_blocking_pids(pid)))",
            holder.pid,
            || answers.is_finished(),
            "the writer waits for the room",
        )
        .await;
        if !waits {
            break;
        }
        // The other node's next transaction queues behind this node's
        // writer, so that it holds the room again once the writer lets go.
        let (pid_tx, pid_rx) = tokio::sync::oneshot::channel();
        let next = tokio::spawn(OtherWriter::lock(other.clone(), "general", pid_tx));
        let next_pid = pid_rx.await.unwrap();
        until(
            &other,
            "SELECT cardinality(pg_blocking_pids($1)) > 0",
            next_pid,
            || false,
            "the other node waits for the room",
        )
        .await;
        holder.store_once("general", "ann", &format!("n{i}")).await;
        taken += 1;
        holder = next.await.unwrap();
    }
    holder.tx.commit().await.unwrap();
    let answers: Vec<_> = answers
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.expect("stored, not unavailable"))
        .collect();

    let stored = store
        .page_before("general", None, 100)
        .await
        .unwrap()
        .messages;
    assert_eq!(stored.len(), NONCES + 1, "one message per send: {stored:?}");
    assert_eq!(
        stored.iter().map(|m| m.id).collect::<Vec<_>>(),
        (1..=NONCES as i64 + 1).collect::<Vec<_>>(),
        "dense"
    );
    for (i, a) in answers.iter().enumerate() {
        let mine = stored
            .iter()
            .find(|m| m.id == a.message.id)
            .expect("stored");
        assert_eq!(
            a.message.body, mine.body,
            "send {i} answers with what is stored"
        );
        assert_eq!(a.duplicate, mine.body == "from the other node", "send {i}");
    }
    assert!(taken >= 1, "the other node stored a send first");

    store.close().await;
    other.close().await;
    drop_postgres(admin, &name).await;
}
