//! The installable app, in the browser: registers the service worker
//! (`public/sw.js`), which keeps the app's static files for when the
//! network is gone and shows pushed notifications.

use wasm_bindgen_futures::JsFuture;

/// Registers `/sw.js` for the whole site; a browser without service
/// workers (or one that refuses, as a private window may) just goes on.
pub fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let workers = window.navigator().service_worker();
    let registering = workers.register("/sw.js");
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(registering).await {
            web_sys::console::warn_2(&"service worker not registered:".into(), &e);
        }
    });
}
