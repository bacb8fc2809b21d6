//! Rate limits on the `governor` crate (messages per user and per address,
//! room requests per user, connection attempts, sign-in attempts, new guest
//! names per address) and the cap on connections per address.

use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

/// The caller was over an allowance; nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("slow down: too many messages")]
    Rate,
    #[error("slow down: too many room requests; this one was not done")]
    Requests,
    #[error("too many connection attempts from your address")]
    ConnectRate,
    #[error("too many connections from your address")]
    TooMany,
    #[error("slow down: too many new rooms; this one was not made")]
    NewRooms,
    #[error("too many new guest names from your address this hour")]
    GuestNames,
}

/// The limits' settings.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub user_per_sec: u32,
    pub user_burst: u32,
    pub ip_per_sec: u32,
    pub ip_burst: u32,
    pub connects_per_min: u32,
    pub connections_per_ip: usize,
    /// New rooms per minute, per identity and per address alike.
    pub rooms_per_min: u32,
    pub guest_names_per_ip_per_hour: u32,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_sec).allow_burst(burst)
}

/// Room requests (`join`, `history`) a user may make per second, sustained:
/// a page joins a few rooms and pages back through history now and then; a
/// loop that creates rooms or reads the store flat out is refused.
const REQUESTS_PER_SEC: u32 = 20;
/// Room requests a user may make at once: enough for a client in as many
/// rooms as a connection may be in (`hub::MAX_ROOMS_PER_CONNECTION`) to join them all again
/// when it reconnects.
pub const REQUESTS_BURST: u32 = 120;

/// New rooms: `per_min` a minute, sustained, and as many at once, so that
/// a team setting up its rooms is not held back.
fn rooms_quota(per_min: u32) -> Quota {
    let n = NonZeroU32::new(per_min).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

/// Every rate limit of the server.
pub struct Limits {
    sends: DefaultKeyedRateLimiter<String>,
    requests: DefaultKeyedRateLimiter<String>,
    sends_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    connects: DefaultKeyedRateLimiter<IpAddr>,
    logins: DefaultKeyedRateLimiter<IpAddr>,
    new_rooms: DefaultKeyedRateLimiter<String>,
    new_rooms_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    guest_names: DefaultKeyedRateLimiter<IpAddr>,
    connections: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_ip: usize,
}

/// One open connection counted against its address; uncounted on drop.
pub struct ConnectionSlot {
    ip: IpAddr,
    connections: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    /// Limits with the given settings.
    pub fn new(s: LimitSettings) -> Self {
        let connects = NonZeroU32::new(s.connects_per_min).unwrap_or(NonZeroU32::MIN);
        let guest_names = NonZeroU32::new(s.guest_names_per_ip_per_hour).unwrap_or(NonZeroU32::MIN);
        Limits {
            sends: DefaultKeyedRateLimiter::keyed(quota(s.user_per_sec, s.user_burst)),
            sends_by_ip: DefaultKeyedRateLimiter::keyed(quota(s.ip_per_sec, s.ip_burst)),
            requests: DefaultKeyedRateLimiter::keyed(quota(REQUESTS_PER_SEC, REQUESTS_BURST)),
            connects: DefaultKeyedRateLimiter::keyed(Quota::per_minute(connects)),
            // Ten sign-in attempts a minute per address, five at once.
            logins: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN)),
            ),
            new_rooms: DefaultKeyedRateLimiter::keyed(rooms_quota(s.rooms_per_min)),
            new_rooms_by_ip: DefaultKeyedRateLimiter::keyed(rooms_quota(s.rooms_per_min)),
            // A whole hour's names at once: a household behind one address
            // may all arrive together; squatting hundreds may not.
            guest_names: DefaultKeyedRateLimiter::keyed(
                Quota::per_hour(guest_names).allow_burst(guest_names),
            ),
            connections: Arc::new(Mutex::new(HashMap::new())),
            per_ip: s.connections_per_ip,
        }
    }

    /// Takes one message from a user's allowance and from its address's.
    pub fn check_send(&self, user: &str, ip: Option<IpAddr>) -> Result<(), Refused> {
        if let Some(ip) = ip {
            self.sends_by_ip.check_key(&ip).map_err(|_| Refused::Rate)?;
        }
        self.sends
            .check_key(&user.to_string())
            .map_err(|_| Refused::Rate)
    }

    /// Takes one room request (`join`, `history`) from a user's allowance.
    pub fn check_request(&self, user: &str) -> Result<(), Refused> {
        self.requests
            .check_key(&user.to_string())
            .map_err(|_| Refused::Requests)
    }

    /// Takes one new room from an identity's allowance and its address's:
    /// names are free for guests, so the address bounds what one machine
    /// can make whatever names it takes.
    pub fn check_new_room(&self, user: &str, ip: Option<IpAddr>) -> Result<(), Refused> {
        if let Some(ip) = ip {
            self.new_rooms_by_ip
                .check_key(&ip)
                .map_err(|_| Refused::NewRooms)?;
        }
        self.new_rooms
            .check_key(&user.to_string())
            .map_err(|_| Refused::NewRooms)
    }

    /// Admits a new connection from an address, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot, Refused> {
        self.connects
            .check_key(&ip)
            .map_err(|_| Refused::ConnectRate)?;
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err(Refused::TooMany);
        }
        *n += 1;
        Ok(ConnectionSlot {
            ip,
            connections: self.connections.clone(),
        })
    }

    /// Takes one sign-in or registration attempt from an address.
    pub fn check_login(&self, ip: IpAddr) -> Result<(), Refused> {
        self.logins.check_key(&ip).map_err(|_| Refused::Rate)
    }

    /// Takes one new guest name (one its browser did not hold) from an
    /// address's allowance.
    pub fn check_new_guest_name(&self, ip: IpAddr) -> Result<(), Refused> {
        self.guest_names
            .check_key(&ip)
            .map_err(|_| Refused::GuestNames)
    }

    /// Forgets keys whose allowance is full again, so the tables stay small.
    pub fn prune(&self) {
        self.sends.retain_recent();
        self.sends.shrink_to_fit();
        self.sends_by_ip.retain_recent();
        self.requests.retain_recent();
        self.requests.shrink_to_fit();
        self.connects.retain_recent();
        self.logins.retain_recent();
        self.new_rooms.retain_recent();
        self.new_rooms.shrink_to_fit();
        self.new_rooms_by_ip.retain_recent();
        self.guest_names.retain_recent();
    }
}
