//! A browser's `PushSubscription`, as its `toJSON()` gives it, checked
//! before it is kept: an endpoint we may send to, and keys we can encrypt
//! for (a P-256 point and a 16-byte secret).

use super::destination::{Destinations, Refused};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;

/// Longest endpoint kept; push services' are a few hundred bytes.
pub const MAX_ENDPOINT: usize = 1024;

/// The JSON a page posts to `/api/push/subscriptions`.
#[derive(Debug, Deserialize)]
pub struct BrowserSubscription {
    pub endpoint: String,
    pub keys: Keys,
    /// Whether a private room's text may show on this device's lock
    /// screen (an extension: docs/PROTOCOL-NOTES.md).
    #[serde(default)]
    pub previews: bool,
}

/// The subscription's keys, base64url.
#[derive(Debug, Deserialize)]
pub struct Keys {
    pub p256dh: String,
    pub auth: String,
}

/// What is wrong with a subscription.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("the endpoint is longer than {MAX_ENDPOINT} bytes")]
    LongEndpoint,
    #[error(transparent)]
    Endpoint(#[from] Refused),
    #[error("keys.p256dh is not a P-256 public key")]
    PublicKey,
    #[error("keys.auth is not a 16-byte secret")]
    Auth,
}

/// A subscription that passed: its keys as decoded.
pub struct Checked {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// Decodes base64url with or without padding.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('=')).ok()
}

impl BrowserSubscription {
    /// Checks the endpoint against `to` and the keys' shapes.
    pub fn check(&self, to: &Destinations) -> Result<Checked, Invalid> {
        if self.endpoint.len() > MAX_ENDPOINT {
            return Err(Invalid::LongEndpoint);
        }
        to.check(&self.endpoint)?;
        let point = decode(&self.keys.p256dh).ok_or(Invalid::PublicKey)?;
        if point.len() != 65 || web_push_native::p256::PublicKey::from_sec1_bytes(&point).is_err() {
            return Err(Invalid::PublicKey);
        }
        let auth = decode(&self.keys.auth).ok_or(Invalid::Auth)?;
        if auth.len() != 16 {
            return Err(Invalid::Auth);
        }
        Ok(Checked {
            endpoint: self.endpoint.clone(),
            p256dh: Base64UrlUnpadded::encode_string(&point),
            auth: Base64UrlUnpadded::encode_string(&auth),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(endpoint: &str, p256dh: &str, auth: &str) -> BrowserSubscription {
        BrowserSubscription {
            endpoint: endpoint.into(),
            keys: Keys {
                p256dh: p256dh.into(),
                auth: auth.into(),
            },
            previews: false,
        }
    }

    // A key pair from the web-push-native documentation.
    const P256DH: &str =
        "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY";
    const AUTH: &str = "_ordMnz7uTCmrpBTeUV4Bw";

    #[test]
    fn keys_must_be_a_curve_point_and_a_16_byte_secret() {
        let to = Destinations::default();
        assert!(
            sub("https://push.example/1", P256DH, AUTH)
                .check(&to)
                .is_ok()
        );
        // Padded base64url is accepted too.
        assert!(
            sub("https://push.example/1", P256DH, "_ordMnz7uTCmrpBTeUV4Bw==")
                .check(&to)
                .is_ok()
        );
        let off_curve = format!("BA{}", "A".repeat(85));
        assert_eq!(
            sub("https://push.example/1", &off_curve, AUTH)
                .check(&to)
                .err(),
            Some(Invalid::PublicKey)
        );
        assert_eq!(
            sub("https://push.example/1", "AAAA", AUTH).check(&to).err(),
            Some(Invalid::PublicKey)
        );
        assert_eq!(
            sub("https://push.example/1", "%%%", AUTH).check(&to).err(),
            Some(Invalid::PublicKey)
        );
        assert_eq!(
            sub("https://push.example/1", P256DH, "AAAA")
                .check(&to)
                .err(),
            Some(Invalid::Auth)
        );
        assert_eq!(
            sub("http://push.example/1", P256DH, AUTH).check(&to).err(),
            Some(Invalid::Endpoint(Refused::NotHttps))
        );
        let long = format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT));
        assert_eq!(
            sub(&long, P256DH, AUTH).check(&to).err(),
            Some(Invalid::LongEndpoint)
        );
    }
}
