//! A store in memory, for the hub's in-process tests (compiled for tests
//! only; the black-box tests run the real stores).
//!
//! It keeps what the hub relies on the way the SQL stores do, which
//! `store/tests.rs` checks against a real SQLite file: dense per-room ids,
//! one answer per (author, nonce) in any room, pages and ranges, rooms with
//! their makers (the seeded `general` and `random` too), and simple maps for
//! accounts, tokens, guest names and settings.
//!
//! ```ignore
//! let store = MemoryStore::new();
//! let hub_store: Arc<dyn Store> = store.clone();
//! store.set_unavailable(true); // every call now fails as a down database
//! ```

use super::change::{Verdict, decide, search_words};
use super::history::around_of;
use super::{
    Account, AccountChange, AccountInfo, Appended, Around, Change, Changed, FileReaders,
    FileRecord, Found, Gate, GuestClaim, GuestName, Invite, InviteProblem, NewMessage, Page,
    PendingAppend, PushSubscription, ReadState, Registered, Role, RoomMeta, SearchAfter, Store,
    StoreError, TokenInfo, Unread, format_ts, now_ms,
};
use crate::names::name_key;
use crate::protocol::{FileObject, Message, RoomKind, parse_room};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A [`Store`] in memory; see the module documentation.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
}

#[derive(Default)]
struct State {
    rooms: BTreeMap<String, Room>,
    /// (author, nonce) → where the first send with them was stored.
    nonces: HashMap<(String, String), (String, i64)>,
    /// By exact name.
    accounts: BTreeMap<String, StoredAccount>,
    tokens: Vec<Token>,
    /// By name key.
    guests: HashMap<String, Guest>,
    settings: HashMap<String, String>,
    invites: Vec<Invite>,
    /// Guest name key → blocked until (ms).
    guest_blocks: HashMap<String, i64>,
    /// The last message's place in the order of every room's.
    seq: i64,
    /// (account, room) → read position and level.
    reads: BTreeMap<(String, String), (i64, Option<crate::protocol::NotifyLevel>)>,
    /// By endpoint.
    pushes: BTreeMap<String, PushSubscription>,
    /// By id: the file (its name unused), its thumbnail's type, when touched.
    files: BTreeMap<String, (FileObject, Option<String>, i64)>,
    /// (file id, account) → the name, when uploaded; until sent or swept.
    uploads: BTreeMap<(String, String), (String, i64)>,
}

impl State {
    /// Every (room, message, file) of messages that carry files.
    fn carried(&self) -> impl Iterator<Item = (&Message, &FileObject)> {
        self.rooms
            .values()
            .flat_map(|r| r.messages.iter())
            .flat_map(|m| m.attachments.iter().map(move |f| (m, f)))
    }
}

struct Room {
    /// As they now stand; message `id` at `id - 1`.
    messages: Vec<Message>,
    /// Each message's time (ms), the order it was stored in across rooms
    /// (search's order), and the revision of its last change (0: none), by
    /// the same place.
    times: Vec<i64>,
    seqs: Vec<i64>,
    revs: Vec<i64>,
    last_rev: i64,
    created_ms: i64,
    active_ms: i64,
    by_guest: bool,
    creator: Option<String>,
    topic: String,
    /// A private room's members.
    members: BTreeSet<String>,
}

struct StoredAccount {
    key: String,
    password_hash: String,
    sessions_from_ms: i64,
    role: Role,
    banned_ms: Option<i64>,
    last_seen_ms: Option<i64>,
}

struct Token {
    id: i64,
    owner: String,
    label: String,
    hash: String,
    created_ms: i64,
    revoked: bool,
}

struct Guest {
    holder: String,
    last_seen_ms: i64,
    name: String,
}

impl Room {
    fn new(now: i64, by_guest: bool) -> Self {
        Room {
            messages: Vec::new(),
            times: Vec::new(),
            seqs: Vec::new(),
            revs: Vec::new(),
            last_rev: 0,
            created_ms: now,
            active_ms: now,
            by_guest,
            creator: None,
            topic: String::new(),
            members: BTreeSet::new(),
        }
    }

    fn last_id(&self) -> i64 {
        self.messages.last().map_or(0, |m| m.id)
    }

    /// The place of message `id`.
    fn at(&self, id: i64) -> Option<usize> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        (i < self.messages.len()).then_some(i)
    }
}

/// Text as search compares it: lower case, without accents.
fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `body` has every one of `words` (folded), as whole words.
fn has_words(body: &str, words: &[String]) -> bool {
    let body = fold(body);
    let have: Vec<&str> = body.split(|c: char| !c.is_alphanumeric()).collect();
    words.iter().all(|w| have.contains(&w.as_str()))
}

fn is_public(room: &str) -> bool {
    matches!(parse_room(room), Ok(RoomKind::Public))
}

impl MemoryStore {
    /// An empty store but for the rooms every database starts with
    /// (`general`, then `random`, as the migrations seed them); usable as
    /// an `Arc<dyn Store>`.
    pub fn new() -> Arc<Self> {
        let store = MemoryStore::default();
        {
            let mut s = store.lock();
            let now = now_ms();
            s.rooms.insert("general".into(), Room::new(now, false));
            s.rooms.insert("random".into(), Room::new(now - 1, false));
        }
        Arc::new(store)
    }

    /// While `true`, every call fails with [`StoreError::Unavailable`], as
    /// when the database is down (a submitted append fails through its
    /// receiver, as a batch that did not commit).
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it leaves nothing half-written
        // that matters to another test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, unless the store plays down.
    fn up(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the memory store is set down".into(),
            ));
        }
        Ok(self.lock())
    }
}

impl State {
    fn append(&mut self, m: NewMessage) -> Appended {
        if let Some(nonce) = &m.nonce
            && let Some((room, id)) = self.nonces.get(&(m.author.clone(), nonce.clone()))
            && let Some(message) = self
                .rooms
                .get(room)
                .and_then(|r| r.messages.get(usize::try_from(*id - 1).ok()?))
        {
            return Appended {
                message: message.clone(),
                duplicate: true,
            };
        }
        let now = now_ms();
        let room = self
            .rooms
            .entry(m.room.clone())
            .or_insert_with(|| Room::new(now, false));
        let message = Message {
            room: m.room,
            id: room.last_id() + 1,
            author: m.author,
            body: m.body,
            ts: format_ts(now),
            nonce: m.nonce,
            reply_to: m.reply_to,
            mentions: m.mentions,
            attachments: m.attachments,
            ..Default::default()
        };
        room.messages.push(message.clone());
        for f in &message.attachments {
            self.uploads.remove(&(f.id.clone(), message.author.clone()));
        }
        room.times.push(now);
        self.seq += 1;
        room.seqs.push(self.seq);
        room.revs.push(0);
        room.active_ms = now;
        if let Some(nonce) = &message.nonce {
            self.nonces.insert(
                (message.author.clone(), nonce.clone()),
                (message.room.clone(), message.id),
            );
        }
        Appended {
            message,
            duplicate: false,
        }
    }

    fn account(&self, name: &str) -> Option<Account> {
        let key = name_key(name);
        let (name, a) = self
            .accounts
            .get_key_value(name)
            .or_else(|| self.accounts.iter().find(|(_, a)| a.key == key))?;
        Some(Account {
            name: name.clone(),
            password_hash: a.password_hash.clone(),
            sessions_from_ms: a.sessions_from_ms,
            role: a.role,
            banned: a.banned_ms.is_some(),
        })
    }

    fn insert_account(&mut self, name: &str, key: &str, password_hash: &str) -> bool {
        if self.accounts.contains_key(name) || self.accounts.values().any(|a| a.key == key) {
            return false;
        }
        let role = if self.accounts.is_empty() {
            Role::Admin
        } else {
            Role::Member
        };
        self.accounts.insert(
            name.to_string(),
            StoredAccount {
                key: key.to_string(),
                password_hash: password_hash.to_string(),
                sessions_from_ms: 0,
                role,
                banned_ms: None,
                last_seen_ms: None,
            },
        );
        true
    }

    /// Whether changing `name` so that it is no longer an admin (or is
    /// banned) would leave no admin who is not banned.
    fn last_admin(&self, name: &str) -> bool {
        self.accounts
            .get(name)
            .is_some_and(|a| a.role == Role::Admin && a.banned_ms.is_none())
            && !self
                .accounts
                .iter()
                .any(|(n, a)| n != name && a.role == Role::Admin && a.banned_ms.is_none())
    }

    /// Whether any of `names` is a member of a direct-message room, without
    /// case (ASCII, as SQLite compares).
    fn has_dms(&self, names: &[&str]) -> bool {
        names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            self.rooms.keys().any(|r| {
                let r = r.to_ascii_lowercase();
                r.starts_with("dm:") && r[3..].split(':').any(|m| m == n)
            })
        })
    }

    fn guest(&self, key: &str, name: &str) -> Option<GuestName> {
        let g = self.guests.get(key)?;
        Some(GuestName {
            holder: g.holder.clone(),
            last_seen_ms: g.last_seen_ms,
            has_dms: self.has_dms(&[name, &g.name]),
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn submit(&self, msg: NewMessage) -> Result<PendingAppend, StoreError> {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(self.up().map(|mut s| s.append(msg)));
        Ok(rx)
    }

    async fn page_before(
        &self,
        room: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let s = self.up()?;
        let older: Vec<&Message> = s
            .rooms
            .get(room)
            .map(|r| {
                r.messages
                    .iter()
                    .filter(|m| before.is_none_or(|b| m.id < b))
                    .collect()
            })
            .unwrap_or_default();
        let from = older.len().saturating_sub(limit);
        Ok(Page {
            messages: older[from..].iter().map(|m| (*m).clone()).collect(),
            more: from > 0,
        })
    }

    async fn range(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.up()?;
        Ok(s.rooms
            .get(room)
            .map(|r| {
                r.messages
                    .iter()
                    .filter(|m| m.id > after && m.id <= upto)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn last_id(&self, room: &str) -> Result<i64, StoreError> {
        Ok(self.up()?.rooms.get(room).map_or(0, Room::last_id))
    }

    async fn change(&self, room: &str, id: i64, change: Change) -> Result<Changed, StoreError> {
        let mut s = self.up()?;
        let Some(r) = s.rooms.get_mut(room) else {
            return Ok(Changed::NotFound);
        };
        let Some(i) = r.at(id) else {
            return Ok(Changed::NotFound);
        };
        match decide(&r.messages[i], &change, now_ms()) {
            Verdict::Answer(answer) => Ok(answer),
            Verdict::Store(message) => {
                r.last_rev += 1;
                r.revs[i] = r.last_rev;
                r.messages[i] = message.clone();
                Ok(Changed::Done {
                    rev: r.last_rev,
                    message,
                })
            }
        }
    }

    async fn changes(
        &self,
        room: &str,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>, StoreError> {
        let s = self.up()?;
        let Some(r) = s.rooms.get(room) else {
            return Ok(Vec::new());
        };
        let mut changed: Vec<(i64, Message)> = r
            .messages
            .iter()
            .zip(&r.revs)
            .filter(|(m, rev)| **rev > 0 && **rev > after && m.id <= upto)
            .map(|(m, rev)| (*rev, m.clone()))
            .collect();
        changed.sort_by_key(|(rev, _)| *rev);
        changed.truncate(limit);
        Ok(changed)
    }

    async fn last_rev(&self, room: &str) -> Result<i64, StoreError> {
        Ok(self.up()?.rooms.get(room).map_or(0, |r| r.last_rev))
    }

    async fn message(&self, room: &str, id: i64) -> Result<Option<Message>, StoreError> {
        let s = self.up()?;
        Ok(s.rooms
            .get(room)
            .and_then(|r| Some(r.messages[r.at(id)?].clone())))
    }

    async fn around(&self, room: &str, id: i64, limit: usize) -> Result<Around, StoreError> {
        let s = self.up()?;
        let Some(r) = s.rooms.get(room) else {
            return Ok(Around::default());
        };
        let before = r
            .messages
            .iter()
            .rev()
            .filter(|m| m.id < id)
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let after = r
            .messages
            .iter()
            .filter(|m| m.id >= id)
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        Ok(around_of(before, after, limit))
    }

    async fn search(
        &self,
        rooms: &[String],
        query: &str,
        after: Option<&SearchAfter>,
        limit: usize,
    ) -> Result<Found, StoreError> {
        let s = self.up()?;
        let words: Vec<String> = search_words(query).iter().map(|w| fold(w)).collect();
        if words.is_empty() {
            return Ok(Found::default());
        }
        let below = match after {
            None => i64::MAX,
            Some(a) => match s.rooms.get(&a.room) {
                Some(r) if a.id >= 1 && (a.id as usize) <= r.seqs.len() => {
                    r.seqs[a.id as usize - 1]
                }
                _ => return Ok(Found::default()),
            },
        };
        let mut found: Vec<(i64, &Message)> = s
            .rooms
            .iter()
            .filter(|(name, _)| rooms.contains(name))
            .flat_map(|(_, r)| r.seqs.iter().copied().zip(&r.messages))
            .filter(|(seq, m)| !m.deleted && *seq < below && has_words(&m.body, &words))
            .collect();
        found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        found.truncate(limit);
        let next = found
            .last()
            .filter(|_| limit > 0 && found.len() >= limit)
            .map(|(_, m)| SearchAfter {
                room: m.room.clone(),
                id: m.id,
            });
        Ok(Found {
            messages: found.into_iter().map(|(_, m)| m.clone()).collect(),
            next,
        })
    }

    async fn create_room(&self, room: &str) -> Result<(), StoreError> {
        let mut s = self.up()?;
        s.rooms
            .entry(room.to_string())
            .or_insert_with(|| Room::new(now_ms(), false));
        Ok(())
    }

    async fn create_room_by(
        &self,
        room: &str,
        creator: &str,
        guest: bool,
    ) -> Result<(), StoreError> {
        let mut s = self.up()?;
        s.rooms.entry(room.to_string()).or_insert_with(|| {
            let mut r = Room::new(now_ms(), guest);
            r.creator = Some(creator.to_string());
            r
        });
        Ok(())
    }

    async fn public_room_count(&self) -> Result<i64, StoreError> {
        let s = self.up()?;
        Ok(s.rooms.keys().filter(|r| is_public(r)).count() as i64)
    }

    async fn expire_empty_rooms(&self, before_ms: i64, keep: &[String]) -> Result<u64, StoreError> {
        let mut s = self.up()?;
        let before = s.rooms.len();
        s.rooms.retain(|name, r| {
            !(r.by_guest
                && r.messages.is_empty()
                && r.created_ms < before_ms
                && !keep.contains(name))
        });
        Ok((before - s.rooms.len()) as u64)
    }

    async fn room_exists(&self, room: &str) -> Result<bool, StoreError> {
        Ok(self.up()?.rooms.contains_key(room))
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.up()?;
        let mut rooms: Vec<(&String, &Room)> =
            s.rooms.iter().filter(|(name, _)| is_public(name)).collect();
        // As the SQL orders them: with messages first, then the most
        // recently active, then by name (the map's byte order; stable sort).
        rooms.sort_by_key(|(_, r)| (r.messages.is_empty(), std::cmp::Reverse(r.active_ms)));
        Ok(rooms
            .into_iter()
            .take(limit)
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn dm_rooms(&self, user: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.up()?;
        let mut rooms: Vec<(&String, &Room)> = s
            .rooms
            .iter()
            .filter(|(n, _)| n.starts_with("dm:") && n[3..].split(':').any(|m| m == user))
            .collect();
        rooms.sort_by_key(|(_, r)| std::cmp::Reverse(r.active_ms));
        Ok(rooms
            .into_iter()
            .take(limit)
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn create_account(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .insert_account(name, &name_key(name), password_hash))
    }

    async fn create_account_for_guest(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = self
            .register_account(name, key, password_hash, holder, keep_ms, Gate::Open)
            .await?;
        Ok(matches!(done, Registered::Created(_)))
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        sessions_from_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.up()?;
        let Some(a) = s.accounts.get_mut(name) else {
            return Ok(false);
        };
        a.password_hash = password_hash.to_string();
        a.sessions_from_ms = sessions_from_ms;
        Ok(true)
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.up()?.account(name))
    }

    async fn create_token(
        &self,
        owner: &str,
        label: &str,
        token_hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        let mut s = self.up()?;
        // The database's constraints: the owner exists, the hash is unique.
        if !s.accounts.contains_key(owner) || s.tokens.iter().any(|t| t.hash == token_hash) {
            return Err(StoreError::Unavailable("constraint failed".into()));
        }
        let token = Token {
            id: s.tokens.last().map_or(1, |t| t.id + 1),
            owner: owner.to_string(),
            label: label.to_string(),
            hash: token_hash.to_string(),
            created_ms: now_ms(),
            revoked: false,
        };
        let info = TokenInfo {
            id: token.id,
            label: token.label.clone(),
            created_ms: token.created_ms,
        };
        s.tokens.push(token);
        Ok(info)
    }

    async fn tokens(&self, owner: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let s = self.up()?;
        Ok(s.tokens
            .iter()
            .rev()
            .filter(|t| t.owner == owner && !t.revoked)
            .map(|t| TokenInfo {
                id: t.id,
                label: t.label.clone(),
                created_ms: t.created_ms,
            })
            .collect())
    }

    async fn revoke_token(&self, owner: &str, id: i64) -> Result<Option<String>, StoreError> {
        let mut s = self.up()?;
        Ok(s.tokens
            .iter_mut()
            .find(|t| t.owner == owner && t.id == id && !t.revoked)
            .map(|t| {
                t.revoked = true;
                t.hash.clone()
            }))
    }

    async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let s = self.up()?;
        Ok(s.tokens
            .iter()
            .find(|t| t.hash == token_hash && !t.revoked)
            .filter(|t| {
                s.accounts
                    .get(&t.owner)
                    .is_some_and(|a| a.banned_ms.is_none())
            })
            .map(|t| t.owner.clone()))
    }

    async fn guest_name(&self, key: &str, name: &str) -> Result<Option<GuestName>, StoreError> {
        Ok(self.up()?.guest(key, name))
    }

    async fn claim_guest_name(
        &self,
        name: &str,
        key: &str,
        holder: &str,
        keep_ms: i64,
        max_names: u32,
    ) -> Result<GuestClaim, StoreError> {
        let mut s = self.up()?;
        let now = now_ms();
        if s.accounts.values().any(|a| a.key == key) {
            return Ok(GuestClaim::Taken);
        }
        let guest = s.guest(key, name);
        if guest.as_ref().is_none_or(|g| g.holder != holder) {
            if guest.is_some_and(|g| g.has_dms || g.last_seen_ms >= now - keep_ms) {
                return Ok(GuestClaim::Taken);
            }
            let held = s
                .guests
                .values()
                .filter(|g| g.holder == holder && g.last_seen_ms >= now - keep_ms)
                .count();
            if held >= max_names as usize {
                return Ok(GuestClaim::TooMany);
            }
        }
        s.guests.insert(
            key.to_string(),
            Guest {
                holder: holder.to_string(),
                last_seen_ms: now,
                name: name.to_string(),
            },
        );
        Ok(GuestClaim::Claimed)
    }

    async fn setting_or(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        let mut s = self.up()?;
        Ok(s.settings
            .entry(name.to_string())
            .or_insert_with(|| fresh.to_string())
            .clone())
    }

    async fn create_private_room(
        &self,
        room: &str,
        owner: &str,
        topic: &str,
        members: &[String],
    ) -> Result<bool, StoreError> {
        let mut s = self.up()?;
        if s.rooms.contains_key(room) {
            return Ok(false);
        }
        let mut r = Room::new(now_ms(), false);
        r.creator = Some(owner.to_string());
        r.topic = topic.to_string();
        r.members = std::iter::once(owner.to_string())
            .chain(members.iter().cloned())
            .collect();
        s.rooms.insert(room.to_string(), r);
        Ok(true)
    }

    async fn room_meta(&self, room: &str) -> Result<Option<RoomMeta>, StoreError> {
        Ok(self.up()?.rooms.get(room).map(|r| RoomMeta {
            owner: r.creator.clone().filter(|_| !r.by_guest),
            topic: r.topic.clone(),
        }))
    }

    async fn set_topic(&self, room: &str, topic: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .rooms
            .get_mut(room)
            .map(|r| r.topic = topic.to_string())
            .is_some())
    }

    async fn room_topics(&self, rooms: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        let s = self.up()?;
        Ok(rooms
            .iter()
            .filter_map(|n| Some((n.clone(), s.rooms.get(n)?.topic.clone())))
            .filter(|(_, t)| !t.is_empty())
            .collect())
    }

    async fn is_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .rooms
            .get(room)
            .is_some_and(|r| r.members.contains(name)))
    }

    async fn add_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .rooms
            .get_mut(room)
            .is_some_and(|r| r.members.insert(name.to_string())))
    }

    async fn remove_room_member(&self, room: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .rooms
            .get_mut(room)
            .is_some_and(|r| r.members.remove(name)))
    }

    async fn room_members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .up()?
            .rooms
            .get(room)
            .map(|r| r.members.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn private_rooms(&self, name: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.up()?;
        let mut rooms: Vec<(&String, &Room)> = s
            .rooms
            .iter()
            .filter(|(_, r)| r.members.contains(name))
            .collect();
        rooms.sort_by_key(|(_, r)| std::cmp::Reverse(r.active_ms));
        Ok(rooms
            .into_iter()
            .take(limit)
            .map(|(n, _)| n.clone())
            .collect())
    }

    // ---- Reading and notification levels (issue 16) ----

    async fn read_states(&self, account: &str) -> Result<Vec<ReadState>, StoreError> {
        Ok(self
            .up()?
            .reads
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|((_, room), (last_read, notify))| ReadState {
                room: room.clone(),
                last_read: *last_read,
                notify: *notify,
            })
            .collect())
    }

    async fn mark_read(
        &self,
        account: &str,
        room: &str,
        id: i64,
    ) -> Result<(i64, bool), StoreError> {
        let mut s = self.up()?;
        let entry = s
            .reads
            .entry((account.to_string(), room.to_string()))
            .or_insert((0, None));
        let moved = entry.0 < id;
        entry.0 = entry.0.max(id);
        Ok((entry.0, moved))
    }

    async fn save_push(&self, sub: &PushSubscription, keep: usize) -> Result<(), StoreError> {
        let mut s = self.up()?;
        s.pushes.insert(sub.endpoint.clone(), sub.clone());
        let mut mine: Vec<(i64, String)> = s
            .pushes
            .values()
            .filter(|p| p.account == sub.account)
            .map(|p| (p.created_ms, p.endpoint.clone()))
            .collect();
        mine.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, endpoint) in mine.into_iter().skip(keep) {
            s.pushes.remove(&endpoint);
        }
        Ok(())
    }

    async fn delete_push(&self, account: &str, endpoint: &str) -> Result<bool, StoreError> {
        let mut s = self.up()?;
        let mine = s.pushes.get(endpoint).is_some_and(|p| p.account == account);
        if mine {
            s.pushes.remove(endpoint);
        }
        Ok(mine)
    }

    async fn forget_push(&self, endpoint: &str) -> Result<(), StoreError> {
        self.up()?.pushes.remove(endpoint);
        Ok(())
    }

    async fn pushes(&self, account: &str) -> Result<Vec<PushSubscription>, StoreError> {
        let s = self.up()?;
        if s.accounts
            .get(account)
            .is_none_or(|a| a.banned_ms.is_some())
        {
            return Ok(Vec::new());
        }
        let mut out: Vec<PushSubscription> = s
            .pushes
            .values()
            .filter(|p| p.account == account)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| a.endpoint.cmp(&b.endpoint))
        });
        Ok(out)
    }

    async fn save_upload(
        &self,
        file: &FileObject,
        account: &str,
        thumb_mime: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.up()?;
        s.files
            .entry(file.id.clone())
            .and_modify(|f| f.2 = now_ms)
            .or_insert_with(|| (file.clone(), thumb_mime.map(str::to_string), now_ms));
        s.uploads.insert(
            (file.id.clone(), account.to_string()),
            (file.name.clone(), now_ms),
        );
        Ok(())
    }

    async fn upload_total(&self, account: &str) -> Result<u64, StoreError> {
        let s = self.up()?;
        let mut ids: BTreeSet<&str> = s
            .uploads
            .keys()
            .filter(|(_, a)| a == account)
            .map(|(id, _)| id.as_str())
            .collect();
        ids.extend(
            s.carried()
                .filter(|(m, _)| m.author == account)
                .map(|(_, f)| f.id.as_str()),
        );
        Ok(ids
            .iter()
            .filter_map(|id| s.files.get(*id))
            .map(|f| f.0.size)
            .sum())
    }

    async fn attachable(
        &self,
        account: &str,
        room: &str,
        ids: &[String],
    ) -> Result<Option<Vec<FileObject>>, StoreError> {
        let s = self.up()?;
        let mut out = Vec::new();
        for id in ids {
            let Some((file, _, _)) = s.files.get(id) else {
                return Ok(None);
            };
            let name = match s.uploads.get(&(id.clone(), account.to_string())) {
                Some((name, _)) => name.clone(),
                None => match s.carried().find(|(m, f)| m.room == room && f.id == *id) {
                    Some((_, f)) => f.name.clone(),
                    None => return Ok(None),
                },
            };
            out.push(FileObject {
                name,
                ..file.clone()
            });
        }
        Ok(Some(out))
    }

    async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        Ok(self.up()?.files.get(id).map(|(f, thumb, _)| FileRecord {
            mime: f.mime.clone(),
            size: f.size,
            thumb_mime: thumb.clone(),
        }))
    }

    async fn file_readers(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<FileReaders, StoreError> {
        let s = self.up()?;
        let rooms: BTreeSet<String> = s
            .carried()
            .filter(|(_, f)| f.id == id)
            .map(|(m, _)| m.room.clone())
            .collect();
        let uploader =
            account.is_some_and(|a| s.uploads.contains_key(&(id.to_string(), a.to_string())));
        Ok(FileReaders {
            rooms: rooms.into_iter().collect(),
            uploader,
        })
    }

    async fn sweep_files(
        &self,
        unsent_before_ms: i64,
        untouched_before_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut s = self.up()?;
        s.uploads.retain(|_, (_, at)| *at >= unsent_before_ms);
        let held: BTreeSet<String> = s
            .uploads
            .keys()
            .map(|(id, _)| id.clone())
            .chain(s.carried().map(|(_, f)| f.id.clone()))
            .collect();
        let gone: Vec<String> = s
            .files
            .iter()
            .filter(|(id, (_, _, touched))| *touched < untouched_before_ms && !held.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            s.files.remove(id);
        }
        Ok(gone)
    }

    async fn push_accounts(&self) -> Result<Vec<String>, StoreError> {
        let s = self.up()?;
        let mut out: Vec<String> = s
            .pushes
            .values()
            .map(|p| p.account.clone())
            .filter(|a| s.accounts.get(a).is_some_and(|a| a.banned_ms.is_none()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn chosen_levels(
        &self,
        room: &str,
    ) -> Result<Vec<(String, crate::protocol::NotifyLevel)>, StoreError> {
        Ok(self
            .up()?
            .reads
            .iter()
            .filter(|((_, r), _)| r == room)
            .filter_map(|((a, _), (_, level))| level.map(|l| (a.clone(), l)))
            .collect())
    }

    async fn set_notify(
        &self,
        account: &str,
        room: &str,
        level: crate::protocol::NotifyLevel,
    ) -> Result<(), StoreError> {
        let mut s = self.up()?;
        s.reads
            .entry((account.to_string(), room.to_string()))
            .or_insert((0, None))
            .1 = Some(level);
        Ok(())
    }

    async fn unread(
        &self,
        account: &str,
        room: &str,
        after: i64,
        cap: u64,
    ) -> Result<Unread, StoreError> {
        let s = self.up()?;
        let Some(r) = s.rooms.get(room) else {
            return Ok(Unread::default());
        };
        let me = account.to_lowercase();
        let unread: Vec<&Message> = r
            .messages
            .iter()
            .filter(|m| m.id > after && m.author != account && !m.deleted)
            .take(usize::try_from(cap).unwrap_or(usize::MAX))
            .collect();
        Ok(Unread {
            messages: unread.len() as u64,
            mentions: unread
                .iter()
                .filter(|m| m.mentions.iter().any(|n| n.to_lowercase() == me))
                .count() as u64,
        })
    }

    // ---- Team accounts (issue 14) ----

    async fn register_account(
        &self,
        name: &str,
        key: &str,
        password_hash: &str,
        holder: Option<&str>,
        keep_ms: i64,
        gate: Gate<'_>,
    ) -> Result<Registered, StoreError> {
        let mut s = self.up()?;
        let now = now_ms();
        let guest = s.guest(key, name);
        let mine = guest
            .as_ref()
            .is_some_and(|g| Some(g.holder.as_str()) == holder);
        if let Some(g) = &guest
            && !mine
            && (g.has_dms || g.last_seen_ms >= now - keep_ms)
        {
            return Ok(Registered::Taken);
        }
        if s.accounts.contains_key(name) || s.accounts.values().any(|a| a.key == key) {
            return Ok(Registered::Taken);
        }
        let mut used = None;
        if !s.accounts.is_empty() {
            match gate {
                Gate::Open => {}
                Gate::Closed => return Ok(Registered::Closed),
                Gate::Invite(None) => return Ok(Registered::InviteNeeded),
                Gate::Invite(Some(code)) => {
                    let Some(i) = s.invites.iter().position(|i| i.code == code) else {
                        return Ok(Registered::BadInvite(InviteProblem::Unknown));
                    };
                    if let Some(p) = s.invites[i].problem(now) {
                        return Ok(Registered::BadInvite(p));
                    }
                    used = Some(i);
                }
            }
        }
        s.insert_account(name, key, password_hash);
        if let Some(i) = used {
            s.invites[i].uses_left -= 1;
            s.invites[i].used += 1;
        }
        if mine {
            s.guests.remove(key);
        }
        Ok(Registered::Created(
            s.accounts.get(name).map_or(Role::Member, |a| a.role),
        ))
    }

    async fn accounts_exist(&self) -> Result<bool, StoreError> {
        Ok(!self.up()?.accounts.is_empty())
    }

    async fn set_role(&self, name: &str, role: Role) -> Result<AccountChange, StoreError> {
        let mut s = self.up()?;
        if !s.accounts.contains_key(name) {
            return Ok(AccountChange::NoSuchAccount);
        }
        if role == Role::Member && s.last_admin(name) {
            return Ok(AccountChange::LastAdmin);
        }
        if let Some(a) = s.accounts.get_mut(name) {
            a.role = role;
        }
        Ok(AccountChange::Done)
    }

    async fn set_banned(&self, name: &str, banned: bool) -> Result<AccountChange, StoreError> {
        let mut s = self.up()?;
        if !s.accounts.contains_key(name) {
            return Ok(AccountChange::NoSuchAccount);
        }
        if banned && s.last_admin(name) {
            return Ok(AccountChange::LastAdmin);
        }
        if let Some(a) = s.accounts.get_mut(name) {
            a.banned_ms = if banned {
                a.banned_ms.or(Some(now_ms()))
            } else {
                None
            };
        }
        Ok(AccountChange::Done)
    }

    async fn account_list(&self) -> Result<Vec<AccountInfo>, StoreError> {
        let s = self.up()?;
        let mut list: Vec<AccountInfo> = s
            .accounts
            .iter()
            .map(|(n, a)| AccountInfo {
                name: n.clone(),
                role: a.role,
                last_seen_ms: a.last_seen_ms,
                banned: a.banned_ms.is_some(),
            })
            .collect();
        // Stable: among equal keys, by name, as the SQL orders them.
        list.sort_by_key(|a| name_key(&a.name));
        Ok(list)
    }

    async fn touch_seen(&self, name: &str) -> Result<(), StoreError> {
        if let Some(a) = self.up()?.accounts.get_mut(name) {
            a.last_seen_ms = Some(now_ms());
        }
        Ok(())
    }

    async fn banned_since(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .up()?
            .accounts
            .iter()
            .filter(|(_, a)| a.banned_ms.is_some_and(|b| b >= since_ms))
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn create_invite(
        &self,
        code: &str,
        created_by: &str,
        uses: i64,
        expires_ms: i64,
    ) -> Result<Invite, StoreError> {
        let invite = Invite {
            code: code.to_string(),
            created_by: created_by.to_string(),
            created_ms: now_ms(),
            expires_ms: Some(expires_ms),
            uses_left: uses,
            used: 0,
            revoked: false,
        };
        self.up()?.invites.push(invite.clone());
        Ok(invite)
    }

    async fn invite(&self, code: &str) -> Result<Option<Invite>, StoreError> {
        Ok(self.up()?.invites.iter().find(|i| i.code == code).cloned())
    }

    async fn live_invites(&self) -> Result<Vec<Invite>, StoreError> {
        let now = now_ms();
        Ok(self
            .up()?
            .invites
            .iter()
            .rev()
            .filter(|i| i.problem(now).is_none())
            .cloned()
            .collect())
    }

    async fn revoke_invite(&self, code: &str) -> Result<bool, StoreError> {
        let mut s = self.up()?;
        Ok(s.invites
            .iter_mut()
            .find(|i| i.code == code && !i.revoked)
            .map(|i| i.revoked = true)
            .is_some())
    }

    async fn block_guest(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.up()?.guest_blocks.insert(key.to_string(), until_ms);
        Ok(())
    }

    async fn guest_blocked(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .up()?
            .guest_blocks
            .get(key)
            .is_some_and(|&until| until > now_ms()))
    }

    // ---- end of team accounts ----

    async fn ping(&self) -> Result<(), StoreError> {
        self.up().map(|_| ())
    }

    async fn close(&self) {}
}
