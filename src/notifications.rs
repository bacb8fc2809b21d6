//! Notifications, in the browser: the permission, a notification of the
//! open app, a short tone, the app's badge, and this device's Web Push
//! subscription (for when no page is open). What to tell and when is the
//! chat state's (`ui::chat_state::ChatState::notifies`); this module only
//! speaks to the browser.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

fn supported() -> bool {
    web_sys::window()
        .is_some_and(|w| js_sys::Reflect::has(&w, &"Notification".into()).unwrap_or(false))
}

/// The browser's current answer; `None` without the Notification API.
pub fn permission() -> Option<NotificationPermission> {
    supported().then(Notification::permission)
}

/// Asks the browser (which shows its own prompt); only ever on a click.
pub async fn ask() -> Option<NotificationPermission> {
    if !supported() {
        return None;
    }
    if let Ok(promise) = Notification::request_permission() {
        let _ = JsFuture::from(promise).await;
    }
    permission()
}

/// Shows a notification; one per `tag` (a newer one replaces it). A click
/// focuses the tab and runs `on_click`.
pub fn show(title: &str, body: &str, tag: &str, on_click: impl Fn() + 'static) {
    if permission() != Some(NotificationPermission::Granted) {
        return;
    }
    let opts = NotificationOptions::new();
    opts.set_body(body);
    opts.set_tag(tag);
    opts.set_icon("/icons/icon-192.png");
    let Ok(n) = Notification::new_with_options(title, &opts) else {
        return;
    };
    let shown = n.clone();
    let click = Closure::<dyn Fn()>::new(move || {
        if let Some(w) = web_sys::window() {
            let _ = w.focus();
        }
        shown.close();
        on_click();
    });
    n.set_onclick(Some(click.as_ref().unchecked_ref()));
    // Lives as long as the notification may be clicked: the page's life.
    click.forget();
}

/// A short soft tone (WebAudio: no sound file to fetch).
pub fn chime() {
    let Ok(ctx) = web_sys::AudioContext::new() else {
        return;
    };
    let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
        return;
    };
    let now = ctx.current_time();
    osc.set_type(web_sys::OscillatorType::Sine);
    osc.frequency().set_value(880.0);
    let level = gain.gain();
    let _ = level.set_value_at_time(0.0001, now);
    let _ = level.exponential_ramp_to_value_at_time(0.2, now + 0.02);
    let _ = level.exponential_ramp_to_value_at_time(0.0001, now + 0.3);
    let linked = osc
        .connect_with_audio_node(&gain)
        .and_then(|_| gain.connect_with_audio_node(&ctx.destination()));
    if linked.is_err() {
        return;
    }
    let _ = osc.start();
    let _ = osc.stop_with_when(now + 0.32);
    // The context goes once the tone has played.
    let closing = ctx.clone();
    let done = Closure::<dyn FnMut()>::once(move || {
        let _ = closing.close();
    });
    osc.set_onended(Some(done.as_ref().unchecked_ref()));
    done.forget();
}

/// Shows `count` on the installed app's icon, or clears it at zero; a
/// browser without the Badging API is left alone.
pub fn set_app_badge(count: usize) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let nav = window.navigator();
    let (name, args) = if count > 0 {
        ("setAppBadge", js_sys::Array::of1(&(count as f64).into()))
    } else {
        ("clearAppBadge", js_sys::Array::new())
    };
    let Ok(f) = js_sys::Reflect::get(&nav, &name.into()) else {
        return;
    };
    let Some(f) = f.dyn_ref::<js_sys::Function>() else {
        return;
    };
    if let Ok(p) = f.apply(&nav, &args)
        && let Ok(p) = p.dyn_into::<js_sys::Promise>()
    {
        // Refused (no installed app): nothing to show it on.
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(p).await;
        });
    }
}

/// Why this device could not be subscribed to Web Push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("no service worker or push manager in this browser")]
    Unsupported,
    #[error("the browser refused: {0}")]
    Browser(String),
    #[error("the server answered {0}")]
    Server(u16),
    #[error("the server could not be reached: {0}")]
    Network(#[from] gloo_net::Error),
}

impl From<wasm_bindgen::JsValue> for PushError {
    fn from(e: wasm_bindgen::JsValue) -> Self {
        PushError::Browser(format!("{e:?}"))
    }
}

/// `GET /api/push/key`.
#[derive(serde::Deserialize)]
struct PushKey {
    /// The server's VAPID public key, base64url.
    key: String,
}

/// Subscribes this device to the server's Web Push (once notifications
/// are allowed, for a signed-in account): the push service's subscription,
/// for the server's VAPID key, posted to `/api/push/subscriptions`. The
/// browser gives back the same subscription when there is one already.
pub async fn subscribe_push() -> Result<(), PushError> {
    use gloo_net::http::Request;
    let window = web_sys::window().ok_or(PushError::Unsupported)?;
    let workers = window.navigator().service_worker();
    let ready = JsFuture::from(workers.ready()?).await?;
    let registration: web_sys::ServiceWorkerRegistration =
        ready.dyn_into().map_err(|_| PushError::Unsupported)?;
    let manager = registration.push_manager()?;
    let answer = Request::get("/api/push/key").send().await?;
    if !answer.ok() {
        return Err(PushError::Server(answer.status()));
    }
    let key = answer.json::<PushKey>().await?.key;
    let options = web_sys::PushSubscriptionOptionsInit::new();
    options.set_user_visible_only(true);
    // The Push API takes the key as its base64url text.
    options.set_application_server_key(&key.into());
    let subscription: web_sys::PushSubscription =
        JsFuture::from(manager.subscribe_with_options(&options)?)
            .await?
            .dyn_into()
            .map_err(|_| PushError::Unsupported)?;
    let body: String = js_sys::JSON::stringify(&subscription.to_json()?.into())?.into();
    let saved = Request::post("/api/push/subscriptions")
        .header("content-type", "application/json")
        .body(body)?
        .send()
        .await?;
    if !saved.ok() {
        return Err(PushError::Server(saved.status()));
    }
    Ok(())
}
