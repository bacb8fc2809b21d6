//! What a request must pass before the hub acts on it: who is asking and
//! from where, the allowances it is measured against (this node's limiters
//! and the cluster's), and the rules for opening a room.
//!
//! Every change a client asks for, over the WebSocket or HTTP, is admitted
//! here; transports only translate the typed refusal ([`super::HubError`])
//! into a frame or a status.

use super::{Actor, HubError};
use crate::backplane::Backplane;
use crate::limits::{Limits, REQUESTS_BURST};
use crate::metrics::Metrics;
use crate::store::StoreError;
use async_trait::async_trait;
use std::net::IpAddr;
use std::sync::Arc;

/// Rooms one connection may be in at once.
pub const MAX_ROOMS_PER_CONNECTION: usize = 100;
// A client in every room it may be in can join them all again at once when
// it reconnects.
const _: () = assert!(REQUESTS_BURST as usize >= MAX_ROOMS_PER_CONNECTION);

/// Who asks, and from which address (none for a caller the server trusts).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub actor: &'a Actor,
    pub ip: Option<IpAddr>,
}

/// Whether a name belongs to someone: an account, a bot, a guest whose name
/// is kept. Direct rooms are opened only with someone, so that messages are
/// never written to a name whoever takes it next would read.
#[async_trait]
pub trait People: Send + Sync + 'static {
    /// Whether `name` is someone's.
    async fn is_someone(&self, name: &str) -> Result<bool, StoreError>;

    /// Whether `name` is an account's (spelled so), not banned: who may be
    /// in a private room.
    async fn is_account(&self, name: &str) -> Result<bool, StoreError>;

    /// Whether `name` is an admin's account.
    async fn is_admin(&self, name: &str) -> Result<bool, StoreError>;
}

/// The rules and allowances of admission.
pub struct Admission {
    limits: Arc<Limits>,
    people: Arc<dyn People>,
    /// Public rooms the server keeps at most.
    max_public_rooms: i64,
}

impl Admission {
    /// Admission with this node's limiters, a directory of people, and a
    /// bound on public rooms.
    pub fn new(limits: Arc<Limits>, people: Arc<dyn People>, max_public_rooms: u32) -> Self {
        Admission {
            limits,
            people,
            max_public_rooms: i64::from(max_public_rooms),
        }
    }

    /// The bound on public rooms.
    pub fn max_public_rooms(&self) -> i64 {
        self.max_public_rooms
    }

    /// Whether `name` is someone's (see [`People`]).
    pub async fn is_someone(&self, name: &str) -> Result<bool, HubError> {
        Ok(self.people.is_someone(name).await?)
    }

    /// Whether `name` is an account's (see [`People`]).
    pub async fn is_account(&self, name: &str) -> Result<bool, HubError> {
        Ok(self.people.is_account(name).await?)
    }

    /// Whether the actor is an admin: an account with that role.
    pub async fn is_admin(&self, actor: &Actor) -> Result<bool, HubError> {
        if actor.identity != super::Identity::Account {
            return Ok(false);
        }
        Ok(self.people.is_admin(&actor.name).await?)
    }
}

/// One message's allowance: this node's limiter (per identity and per
/// address), then the one every node shares. Awaited before the message is
/// queued with the store, so that one connection's sends keep their order.
pub(super) async fn take_send(
    admission: &Admission,
    backplane: &dyn Backplane,
    metrics: &Metrics,
    caller: Caller<'_>,
) -> Result<(), HubError> {
    let local = admission.limits.check_send(&caller.actor.name, caller.ip);
    spent(metrics, local.is_ok(), HubError::RateLimited)?;
    match backplane.take_send(&caller.actor.name).await {
        Ok(taken) => spent(metrics, taken, HubError::RateLimited),
        // Unknown (Redis away): this node's limiter has spoken; allow.
        Err(e) => {
            tracing::debug!(error = %e, "shared rate limit unknown; allowing");
            Ok(())
        }
    }
}

/// One room request (`join`, `history`, and the changes to a room's
/// members and topic) from the caller's allowance.
pub(super) fn take_request(
    admission: &Admission,
    metrics: &Metrics,
    caller: Caller<'_>,
) -> Result<(), HubError> {
    let taken = admission.limits.check_request(&caller.actor.name);
    spent(metrics, taken.is_ok(), HubError::RequestRate)
}

/// One new room from the caller's allowance and its address's.
pub(super) fn take_new_room(
    admission: &Admission,
    metrics: &Metrics,
    caller: Caller<'_>,
) -> Result<(), HubError> {
    let taken = admission
        .limits
        .check_new_room(&caller.actor.name, caller.ip);
    spent(metrics, taken.is_ok(), HubError::RoomRate)
}

/// `Ok` when an allowance was taken; else counts the refusal.
fn spent(metrics: &Metrics, taken: bool, refusal: HubError) -> Result<(), HubError> {
    if taken {
        return Ok(());
    }
    metrics.rate_limited.inc();
    Err(refusal)
}
