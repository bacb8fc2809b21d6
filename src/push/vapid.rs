//! The server's VAPID key pair (RFC 8292): made at first start and kept in
//! the store, so every node of a cluster signs with the same key, and
//! browsers' subscriptions outlive restarts.

use crate::store::{Store, StoreError};
use base64ct::{Base64UrlUnpadded, Encoding};
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};

const SETTING: &str = "vapid_private_key";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored VAPID key is not a P-256 private key")]
    Corrupt,
}

/// The key pair and its public half as browsers take it.
pub struct Vapid {
    pub pair: ES256KeyPair,
    /// The uncompressed public point, base64url: `applicationServerKey`.
    pub public: String,
}

impl Vapid {
    /// The stored key, or a new one stored now (the first node to store
    /// it wins; the others read it back).
    pub async fn load(store: &dyn Store) -> Result<Vapid, VapidError> {
        let fresh = Base64UrlUnpadded::encode_string(&ES256KeyPair::generate().to_bytes());
        let kept = store.setting_or(SETTING, &fresh).await?;
        let bytes = Base64UrlUnpadded::decode_vec(&kept).map_err(|_| VapidError::Corrupt)?;
        let pair = ES256KeyPair::from_bytes(&bytes).map_err(|_| VapidError::Corrupt)?;
        let public = Base64UrlUnpadded::encode_string(
            &pair.public_key().public_key().to_bytes_uncompressed(),
        );
        Ok(Vapid { pair, public })
    }
}
