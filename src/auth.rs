//! Who a connection or request speaks as: accounts (password, session
//! cookie, API tokens), operator bots, and guests, whose names are kept for
//! the browser that used them.

use crate::hub::{Actor, Identity};
use crate::names::{self, name_key};
use crate::protocol::ErrorCode;
use crate::store::{
    Gate, GuestClaim, GuestName, Invite, InviteProblem, Registered, Role, Store, StoreError,
    TokenInfo,
};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How long a guest name stays with the browser that last used it.
pub const GUEST_NAME_KEPT_MS: i64 = 30 * 24 * 3600 * 1000;
/// Shortest password accepted at registration.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD: usize = 256;
/// Distinct guest names one browser may hold at once, by default.
pub const GUEST_NAMES_PER_BROWSER: u32 = 3;

/// Why an identity was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    RateLimited(String),
    /// Not allowed to anyone in this position (a banned account, closed
    /// registration, not an admin).
    #[error("{0}")]
    Forbidden(String),
    /// An invite link that was good once and is no longer.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// The protocol's code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::BadName(_) => ErrorCode::BadName,
            AuthError::Unauthorized(_) => ErrorCode::Unauthorized,
            AuthError::BadRequest(_) => ErrorCode::BadRequest,
            AuthError::RateLimited(_) => ErrorCode::RateLimited,
            AuthError::Forbidden(_) | AuthError::Gone(_) => ErrorCode::Forbidden,
            AuthError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// Who holds a guest name: the browser's guest cookie, or the connection
/// itself for clients without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Cookie(String),
    Connection(u64),
    /// An account being registered under the name, for the moment it takes.
    Registration,
}

/// Identities, passwords, tokens and the names guests hold while online.
pub struct Auth {
    guests: bool,
    /// SHA-256 of an operator token → bot name.
    bots: HashMap<String, String>,
    /// The bots' names' keys ([`name_key`]).
    bot_keys: HashSet<String>,
    store: Arc<dyn Store>,
    /// Guest name's key ([`name_key`]) → (holder, live connections).
    online_guests: Mutex<HashMap<String, (Holder, usize)>>,
    /// Distinct guest names one browser may hold.
    names_per_browser: u32,
    hasher: Argon2<'static>,
    /// A real hash of nothing, verified for unknown names.
    dummy_hash: String,
    /// Who may register once the server has accounts.
    registration: Registration,
}

/// `CAUSERIE_REGISTRATION`: who may register once the server has its
/// first account (that one always may, and becomes admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Only through an invite link.
    #[default]
    Invite,
    /// No one: accounts are made with `causerie user add`.
    Closed,
}

/// Longest an invite may stay usable.
pub const MAX_INVITE_TTL_MS: i64 = 366 * 24 * 3600 * 1000;
/// Most uses one invite may have.
pub const MAX_INVITE_USES: i64 = 1000;
/// How long an admin's block of a guest name lasts.
pub const GUEST_BLOCK_MS: i64 = 24 * 3600 * 1000;

/// SHA-256 of a secret, hex: tokens and guest cookies are kept only so.
pub fn digest(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    hex::encode(d)
}

impl Auth {
    /// Guests allowed or not, the operator's bot tokens (token → name) and
    /// the store that keeps accounts.
    pub fn new(guests: bool, bots: HashMap<String, String>, store: Arc<dyn Store>) -> Self {
        // OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane.
        let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let dummy_hash = hasher
            .hash_password(b"no such account", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        Auth {
            guests,
            bot_keys: bots.values().map(|n| name_key(n)).collect(),
            bots: bots.into_iter().map(|(t, n)| (digest(&t), n)).collect(),
            store,
            online_guests: Mutex::new(HashMap::new()),
            names_per_browser: GUEST_NAMES_PER_BROWSER,
            hasher,
            dummy_hash,
            registration: Registration::default(),
        }
    }

    /// Sets who may register once the server has accounts.
    pub fn with_registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// Who may register once the server has accounts.
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// Sets how many distinct guest names one browser may hold.
    pub fn with_guest_names_per_browser(mut self, n: u32) -> Self {
        self.names_per_browser = n.max(1);
        self
    }

    /// The bot or account an API token belongs to.
    pub async fn token(&self, token: &str) -> Result<Option<Actor>, AuthError> {
        // Looking up the hash, never the token, says nothing through timing.
        let hash = digest(token);
        if let Some(name) = self.bots.get(&hash) {
            return Ok(Some(Actor {
                name: name.clone(),
                identity: Identity::Bot,
            }));
        }
        Ok(self.store.token_owner(&hash).await?.map(|name| Actor {
            name,
            identity: Identity::Account,
        }))
    }

    /// An account signed in through the session cookie.
    pub fn account(name: String) -> Actor {
        Actor {
            name,
            identity: Identity::Account,
        }
    }

    /// Whether a name belongs to a bot or an account (`key` is its [`name_key`]).
    async fn reserved(&self, name: &str, key: &str) -> Result<bool, AuthError> {
        Ok(self.bot_keys.contains(key) || self.store.account(name).await?.is_some())
    }

    /// Whether a name is someone's: a bot's, an account's, or a guest name a
    /// browser holds or held (a cookie-less guest's is no one's: it goes to
    /// whoever takes it next).
    pub async fn is_someone(&self, name: &str) -> Result<bool, StoreError> {
        let key = name_key(name);
        Ok(self.bot_keys.contains(&key)
            || self.store.account(name).await?.is_some()
            || self.store.guest_name(&key, name).await?.is_some())
    }

    /// Lets a guest take a name. Bots' and accounts' names are taken; a name
    /// online with another holder is taken; a name a browser used in the
    /// last 30 days is kept for that browser (against every other client,
    /// with a cookie or without), and one with direct messages for good.
    /// A browser holds a few names at most; `new_name` is asked before a
    /// browser takes a name it does not hold yet (the per-address limit).
    pub async fn claim_guest(
        &self,
        name: &str,
        holder: &Holder,
        new_name: impl FnOnce() -> Result<(), crate::limits::Refused>,
    ) -> Result<Actor, AuthError> {
        if !self.guests {
            return Err(AuthError::Unauthorized(
                "guests are not allowed here; sign in or use a token".into(),
            ));
        }
        names::check_new_name(name).map_err(|e| AuthError::BadName(e.to_string()))?;
        let taken = || AuthError::BadName(format!("the name {name:?} is taken"));
        let key = name_key(name);
        if self.reserved(name, &key).await? {
            return Err(taken());
        }
        if self.store.guest_blocked(&key).await? {
            return Err(AuthError::BadName(format!(
                "an admin blocked the guest name {name:?} for a day; pick another name"
            )));
        }
        if let Some((h, _)) = self.guests_map().get(&key)
            && h != holder
        {
            return Err(taken());
        }
        let held = self.store.guest_name(&key, name).await?;
        match holder {
            Holder::Cookie(cookie) => {
                let mine = digest(cookie);
                let renewing = held.as_ref().is_some_and(|g| g.holder == mine);
                if !renewing {
                    if held.as_ref().is_some_and(kept) {
                        return Err(taken());
                    }
                    new_name().map_err(|_| {
                        AuthError::RateLimited(
                            "too many new guest names from your address this hour; \
                             use a name you already have, or try again later"
                                .into(),
                        )
                    })?;
                }
                let claim = self
                    .store
                    .claim_guest_name(
                        name,
                        &key,
                        &mine,
                        GUEST_NAME_KEPT_MS,
                        self.names_per_browser,
                    )
                    .await?;
                match claim {
                    GuestClaim::Claimed => {}
                    GuestClaim::Taken => return Err(taken()),
                    GuestClaim::TooMany => {
                        return Err(AuthError::BadName(format!(
                            "this browser already holds {} guest names, the most it may \
                             hold (each for 30 days after its last use); use one of them \
                             or create an account",
                            self.names_per_browser
                        )));
                    }
                }
            }
            // Without the cookie, only names no browser keeps.
            Holder::Connection(_) | Holder::Registration => {
                if held.as_ref().is_some_and(kept) {
                    return Err(taken());
                }
            }
        }
        // Checked again under the lock: another connection may have won meanwhile.
        {
            let mut online = self.guests_map();
            match online.get_mut(&key) {
                Some((h, n)) if h == holder => *n += 1,
                Some(_) => return Err(taken()),
                None => {
                    online.insert(key.clone(), (holder.clone(), 1));
                }
            }
        }
        // A registration that began before our entry went in has finished
        // by now (it holds the entry while it runs): its account wins.
        if self.reserved(name, &key).await? {
            self.release_guest(name);
            return Err(taken());
        }
        Ok(Actor {
            name: name.to_string(),
            identity: match holder {
                Holder::Cookie(_) => Identity::Guest,
                Holder::Connection(_) | Holder::Registration => Identity::PassingGuest,
            },
        })
    }

    fn guests_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Holder, usize)>> {
        self.online_guests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back one connection's claim on a guest name.
    pub fn release_guest(&self, name: &str) {
        let key = name_key(name);
        let mut online = self.guests_map();
        if let Some((_, n)) = online.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                online.remove(&key);
            }
        }
    }

    /// Registers an account. The name must be free of accounts, bots,
    /// guests online and browsers' guest names (kept 30 days, or for good
    /// when they have direct messages). The browser that holds the guest
    /// name (`guest_cookie`) may register it: the guest becomes the account,
    /// conversations included, and the guest reservation ends.
    ///
    /// Past the server's first account, [`Registration`] decides: open,
    /// only with a live `invite` code, or closed.
    pub async fn register(
        &self,
        name: &str,
        password: &str,
        guest_cookie: Option<&str>,
        invite: Option<&str>,
    ) -> Result<Actor, AuthError> {
        names::check_new_name(name).map_err(|e| AuthError::BadName(e.to_string()))?;
        check_password(password)?;
        let taken = || AuthError::BadName(format!("the name {name:?} is taken"));
        let key = name_key(name);
        let mine = guest_cookie.map(digest);
        let held_by_other = |g: &GuestName| Some(&g.holder) != mine.as_ref() && kept(g);
        if self.reserved(name, &key).await?
            || self
                .store
                .guest_name(&key, name)
                .await?
                .is_some_and(|g| held_by_other(&g))
        {
            return Err(taken());
        }
        // Hashing takes a while: before the name is held, not while.
        let hash = self.hash(password).await?;
        // Hold the name among the guests online while the account is made,
        // so no guest takes it meanwhile; its own browser's guest may stay.
        let own = guest_cookie.map(|c| Holder::Cookie(c.to_string()));
        {
            let mut online = self.guests_map();
            match online.get(&key) {
                Some((h, _)) if Some(h) == own.as_ref() => {}
                Some(_) => return Err(taken()),
                None => {
                    online.insert(key.clone(), (Holder::Registration, 1));
                }
            }
        }
        let invite = invite.map(str::trim).filter(|c| !c.is_empty());
        let gate = match self.registration {
            Registration::Open => Gate::Open,
            Registration::Invite => Gate::Invite(invite),
            Registration::Closed => Gate::Closed,
        };
        let created = self
            .store
            .register_account(name, &key, &hash, mine.as_deref(), GUEST_NAME_KEPT_MS, gate)
            .await;
        {
            let mut online = self.guests_map();
            if matches!(online.get(&key), Some((Holder::Registration, _))) {
                online.remove(&key);
            }
        }
        match created? {
            Registered::Created(_) => Ok(Self::account(name.to_string())),
            Registered::Taken => Err(taken()),
            Registered::Closed => Err(AuthError::Forbidden(
                "registration is closed on this server; ask an admin for an account".into(),
            )),
            Registered::InviteNeeded => Err(AuthError::Forbidden(
                "registration here is by invitation: open the invite link you were given".into(),
            )),
            Registered::BadInvite(p) => Err(invite_refusal(p)),
        }
    }

    /// Makes an account from the command line: whatever the registration
    /// mode, an admin when asked (or when it is the server's first).
    pub async fn add_account(
        &self,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<Role, AuthError> {
        names::check_new_name(name).map_err(|e| AuthError::BadName(e.to_string()))?;
        check_password(password)?;
        let taken = || AuthError::BadName(format!("the name {name:?} is taken"));
        let key = name_key(name);
        if self.reserved(name, &key).await? {
            return Err(taken());
        }
        let hash = self.hash(password).await?;
        let made = self
            .store
            .register_account(name, &key, &hash, None, GUEST_NAME_KEPT_MS, Gate::Open)
            .await?;
        let Registered::Created(role) = made else {
            return Err(taken());
        };
        if admin && role != Role::Admin {
            self.store.set_role(name, Role::Admin).await?;
            return Ok(Role::Admin);
        }
        Ok(role)
    }

    /// Makes an invite link's code: `uses` registrations (1 to
    /// [`MAX_INVITE_USES`]) until `expires_in_ms` from now.
    pub async fn create_invite(
        &self,
        created_by: &str,
        uses: i64,
        expires_in_ms: i64,
    ) -> Result<Invite, AuthError> {
        if !(1..=MAX_INVITE_USES).contains(&uses) {
            return Err(AuthError::BadRequest(format!(
                "an invite is good for 1 to {MAX_INVITE_USES} registrations"
            )));
        }
        if !(1..=MAX_INVITE_TTL_MS).contains(&expires_in_ms) {
            return Err(AuthError::BadRequest(
                "an invite expires after a minute at least and a year at most".into(),
            ));
        }
        let code = hex::encode(rand::random::<[u8; 16]>());
        let expires = crate::store::now_ms() + expires_in_ms;
        Ok(self
            .store
            .create_invite(&code, created_by, uses, expires)
            .await?)
    }

    /// Whether an invite code can be used now: `Ok` if so, else why not.
    pub async fn check_invite(&self, code: &str) -> Result<(), AuthError> {
        let problem = match self.store.invite(code.trim()).await? {
            Some(i) => i.problem(crate::store::now_ms()),
            None => Some(InviteProblem::Unknown),
        };
        problem.map_or(Ok(()), |p| Err(invite_refusal(p)))
    }

    /// Checks a name and password; the same answer for an unknown name and a
    /// wrong password.
    pub async fn login(&self, name: &str, password: &str) -> Result<Actor, AuthError> {
        let refused = || AuthError::Unauthorized("wrong name or password".into());
        if password.len() > MAX_PASSWORD {
            return Err(refused());
        }
        let account = self.store.account(name).await?;
        // Verify against a dummy hash for unknown names, so timing tells nothing.
        let stored = account
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self.verify(password, &stored).await;
        match account {
            // Said only to whoever knows the password: no one else learns
            // that the name is banned.
            Some(a) if ok && a.banned => Err(AuthError::Forbidden(
                "this account is banned; ask an admin if you think it is a mistake".into(),
            )),
            Some(a) if ok => Ok(Self::account(a.name)),
            _ => Err(refused()),
        }
    }

    /// Changes an account's password after checking the current one; the
    /// account's sessions signed in before the returned time (ms) no
    /// longer count.
    pub async fn change_password(
        &self,
        name: &str,
        current: &str,
        new: &str,
    ) -> Result<i64, AuthError> {
        let actor = self
            .login(name, current)
            .await
            .map_err(|_| AuthError::Unauthorized("the current password is wrong".into()))?;
        check_password(new)?;
        let hash = self.hash(new).await?;
        let now = crate::store::now_ms();
        if !self.store.set_password(&actor.name, &hash, now).await? {
            return Err(AuthError::Unauthorized("no such account".into()));
        }
        Ok(now)
    }

    /// Whether a session of `name` signed in at `signed_in_ms` still
    /// counts: the account exists, is not banned, and its password has not
    /// changed since.
    pub async fn session_counts(&self, name: &str, signed_in_ms: i64) -> Result<bool, AuthError> {
        Ok(self
            .store
            .account(name)
            .await?
            .is_some_and(|a| a.name == name && !a.banned && signed_in_ms >= a.sessions_from_ms))
    }

    async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let hasher = self.hasher.clone();
        let password = password.to_string();
        // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            hasher
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| AuthError::BadRequest(format!("hashing failed: {e}")))?
        .map_err(|e| AuthError::BadRequest(format!("hashing failed: {e}")))
    }

    async fn verify(&self, password: &str, stored: &str) -> bool {
        let hasher = self.hasher.clone();
        let password = password.to_string();
        let stored = stored.to_string();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|h| hasher.verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// Creates an API token for an account; the token is returned once and
    /// only its hash is kept.
    pub async fn create_token(
        &self,
        owner: &str,
        label: &str,
    ) -> Result<(String, TokenInfo), AuthError> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(AuthError::BadRequest(
                "a token's label is 1 to 64 characters, without control characters".into(),
            ));
        }
        let secret: [u8; 24] = rand::random();
        let token = format!("cz_{}", hex::encode(secret));
        let info = self
            .store
            .create_token(owner, label, &digest(&token))
            .await?;
        Ok((token, info))
    }
}

/// A refusal of an invite link that says plainly why.
fn invite_refusal(p: InviteProblem) -> AuthError {
    match p {
        InviteProblem::Unknown => {
            AuthError::Forbidden("this invite link is not valid; check that it is whole".into())
        }
        InviteProblem::UsedUp => {
            AuthError::Gone("this invite link is used up; ask for a new one".into())
        }
        InviteProblem::Expired => {
            AuthError::Gone("this invite link has expired; ask for a new one".into())
        }
        InviteProblem::Revoked => {
            AuthError::Gone("this invite link was revoked; ask for a new one".into())
        }
    }
}

/// Whether a guest reservation still keeps its name from others: used in
/// the last 30 days, or with direct messages (those never change hands).
fn kept(g: &GuestName) -> bool {
    g.has_dms || g.last_seen_ms >= crate::store::now_ms() - GUEST_NAME_KEPT_MS
}

fn check_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AuthError::BadRequest(format!(
            "a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// The keys a connection is bound by (see `hub::Outboxes::bind`): what its
/// identity rests on, so that it is closed when that ends.
pub mod credentials {
    use super::digest;
    use crate::hub::{Actor, Identity};

    /// Every connection opened with this browser session.
    pub fn session(session_id: &str) -> String {
        format!("session:{}", digest(session_id))
    }

    /// Every connection opened with the API token of this hash (the
    /// store keeps only the hash).
    pub fn token(token_hash: &str) -> String {
        format!("token:{token_hash}")
    }

    /// Every connection of this account opened from a browser session.
    pub fn account_sessions(name: &str) -> String {
        format!("account-sessions:{}", super::name_key(name))
    }

    /// Every connection of this account, whatever it said hello with.
    pub fn account(name: &str) -> String {
        format!("account:{}", super::name_key(name))
    }

    /// Every connection that speaks as this name, guests' included: frames
    /// meant for a person (a room they were added to), and an admin's end
    /// of a guest's connections.
    pub fn person(name: &str) -> String {
        crate::hub::person_key(name)
    }

    /// The keys of a connection opened with a browser session.
    pub fn for_session(session_id: &str, name: &str) -> Vec<String> {
        vec![session(session_id), account_sessions(name), account(name)]
    }

    /// The keys of a connection that said hello with a token.
    pub fn for_token(secret: &str, actor: &Actor) -> Vec<String> {
        let mut keys = vec![token(&digest(secret))];
        if actor.identity == Identity::Account {
            keys.push(account(&actor.name));
        }
        keys
    }
}

#[async_trait::async_trait]
impl crate::hub::People for Auth {
    async fn is_someone(&self, name: &str) -> Result<bool, StoreError> {
        Auth::is_someone(self, name).await
    }

    async fn is_account(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .account(name)
            .await?
            .is_some_and(|a| a.name == name && !a.banned))
    }

    async fn is_admin(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .account(name)
            .await?
            .is_some_and(|a| a.name == name && a.role == crate::store::Role::Admin && !a.banned))
    }
}
