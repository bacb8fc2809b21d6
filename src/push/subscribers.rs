//! Who has a device to push to, kept in memory so that a message nobody
//! could be pushed costs the send path one atomic load.

use crate::names::name_key;
use crate::store::{Store, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The accounts with at least one push subscription, by name key.
#[derive(Default)]
pub struct Subscribers {
    keys: RwLock<Arc<HashSet<String>>>,
    any: AtomicBool,
}

impl Subscribers {
    /// Reads the list again from the store: after a change made through
    /// this node at once, and now and then for changes made on others.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let keys: HashSet<String> = store
            .push_accounts()
            .await?
            .iter()
            .map(|a| name_key(a))
            .collect();
        self.any.store(!keys.is_empty(), Ordering::Release);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// Whether anyone at all may be pushed to.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The accounts as they stand now.
    pub fn snapshot(&self) -> Arc<HashSet<String>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, PushSubscription};

    #[tokio::test]
    async fn follows_the_store() {
        let store = MemoryStore::new();
        let subs = Subscribers::default();
        subs.reload(store.as_ref()).await.unwrap();
        assert!(!subs.any());
        assert!(store.create_account("Ada", "h").await.unwrap());
        let sub = PushSubscription {
            endpoint: "https://push.example/1".into(),
            account: "Ada".into(),
            p256dh: "k".into(),
            auth: "a".into(),
            previews: false,
            label: String::new(),
            created_ms: 1,
        };
        store.save_push(&sub, 5).await.unwrap();
        assert!(!subs.any(), "not before it is reloaded");
        subs.reload(store.as_ref()).await.unwrap();
        assert!(subs.any());
        assert!(subs.snapshot().contains(&name_key("ADA")));
        store.forget_push(&sub.endpoint).await.unwrap();
        subs.reload(store.as_ref()).await.unwrap();
        assert!(!subs.any());
    }
}
