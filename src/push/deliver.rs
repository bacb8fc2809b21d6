//! One push to one device: encrypted for it (RFC 8291, `aes128gcm`),
//! signed with the server's key (VAPID), sent over HTTPS by a client that
//! follows no redirect and no proxy, resolves names to public addresses
//! only, and gives up after its timeout.

use super::destination::Destinations;
use super::subscription::decode;
use super::vapid::Vapid;
use crate::store::PushSubscription;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use web_push_native::{Auth, WebPushBuilder, p256::PublicKey};

/// How long a push service keeps a push for a device that is offline; also
/// the VAPID token's lifetime, which push services cap at 24 hours.
const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Longest wait a push service may ask for before a retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The subscription is gone (404, 410) or may not be sent to: forget it.
    Gone(String),
    /// Worth another try, after at least this long when the service said.
    Retry(Option<Duration>, String),
    /// Not worth another try (413, other 4xx, a key that no longer decodes).
    Failed(String),
}

/// Sends pushes; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    vapid: Arc<Vapid>,
    contact: Arc<str>,
    to: Destinations,
}

impl Sender {
    /// A sender signing with `vapid`, naming `contact` (a `mailto:` or
    /// `https:` URL) to push services, waiting at most `timeout` a push.
    pub fn new(
        vapid: Arc<Vapid>,
        contact: &str,
        to: Destinations,
        timeout: Duration,
    ) -> Result<Sender, reqwest::Error> {
        // reqwest is built without a TLS provider of its own; ring is the
        // process's (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .dns_resolver(to.resolver())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()?;
        Ok(Sender {
            client,
            vapid,
            contact: contact.into(),
            to,
        })
    }

    /// Sends `payload` to one device.
    pub async fn send(&self, sub: &PushSubscription, payload: &[u8]) -> Outcome {
        let request = match self.request(sub, payload) {
            Ok(r) => r,
            Err(gone) => return gone,
        };
        match self.client.execute(request).await {
            Ok(res) => judge(res.status(), retry_after(res.headers())),
            Err(e) => Outcome::Retry(None, describe(&e)),
        }
    }

    fn request(&self, sub: &PushSubscription, payload: &[u8]) -> Result<reqwest::Request, Outcome> {
        if let Err(e) = self.to.check(&sub.endpoint) {
            return Err(Outcome::Gone(e.to_string()));
        }
        let endpoint = sub
            .endpoint
            .parse()
            .map_err(|_| Outcome::Gone("the endpoint is not a URI".into()))?;
        let key = decode(&sub.p256dh)
            .and_then(|k| PublicKey::from_sec1_bytes(&k).ok())
            .ok_or_else(|| Outcome::Gone("the device's key does not decode".into()))?;
        let auth = decode(&sub.auth)
            .filter(|a| a.len() == 16)
            .map(|a| Auth::clone_from_slice(&a))
            .ok_or_else(|| Outcome::Gone("the device's secret does not decode".into()))?;
        let built = WebPushBuilder::new(endpoint, key, auth)
            .with_valid_duration(TTL)
            .with_vapid(&self.vapid.pair, &self.contact)
            .build(payload.to_vec())
            .map_err(|e| Outcome::Failed(format!("could not encrypt: {e}")))?;
        reqwest::Request::try_from(built).map_err(|e| Outcome::Failed(describe(&e)))
    }
}

/// What a push service's status means for the subscription.
fn judge(status: StatusCode, after: Option<Duration>) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone(format!("the push service answered {status}")),
        429 | 500..=599 => Outcome::Retry(after, format!("the push service answered {status}")),
        413 => Outcome::Failed("the push service found the payload too large (413)".into()),
        _ => Outcome::Failed(format!("the push service answered {status}")),
    }
}

/// A `Retry-After` in seconds (the form push services use), capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// An HTTP error with its causes, which say what actually happened.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_between_forgetting_retrying_and_giving_up() {
        assert_eq!(judge(StatusCode::CREATED, None), Outcome::Delivered);
        assert!(matches!(judge(StatusCode::GONE, None), Outcome::Gone(_)));
        assert!(matches!(
            judge(StatusCode::NOT_FOUND, None),
            Outcome::Gone(_)
        ));
        let later = Some(Duration::from_secs(3));
        assert!(
            matches!(judge(StatusCode::TOO_MANY_REQUESTS, later), Outcome::Retry(l, _) if l == later)
        );
        assert!(matches!(
            judge(StatusCode::INTERNAL_SERVER_ERROR, None),
            Outcome::Retry(None, _)
        ));
        assert!(matches!(
            judge(StatusCode::PAYLOAD_TOO_LARGE, None),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            judge(StatusCode::BAD_REQUEST, None),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    }
}
