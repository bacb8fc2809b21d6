//! Notifications of the open app, in the browser: the permission, the
//! notification itself, a short tone, and the app's badge. What to tell and
//! when is the chat state's (`ui::chat_state::ChatState::notifies`); this
//! module only speaks to the browser.

use crate::ui::alerts::Permission;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

fn supported() -> bool {
    web_sys::window()
        .is_some_and(|w| js_sys::Reflect::has(&w, &"Notification".into()).unwrap_or(false))
}

fn from_browser(p: NotificationPermission) -> Permission {
    match p {
        NotificationPermission::Granted => Permission::Granted,
        NotificationPermission::Denied => Permission::Denied,
        _ => Permission::Ask,
    }
}

/// The browser's current answer.
pub fn permission() -> Permission {
    if !supported() {
        return Permission::Unsupported;
    }
    from_browser(Notification::permission())
}

/// Asks the browser (which shows its own prompt); only ever on a click.
pub async fn ask() -> Permission {
    if !supported() {
        return Permission::Unsupported;
    }
    let Ok(promise) = Notification::request_permission() else {
        return permission();
    };
    let _ = JsFuture::from(promise).await;
    permission()
}

/// Shows a notification; one per `tag` (a newer one replaces it). A click
/// focuses the tab and runs `on_click`.
pub fn show(title: &str, body: &str, tag: &str, on_click: impl Fn() + 'static) {
    if permission() != Permission::Granted {
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
