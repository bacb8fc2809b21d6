//! Search in the chat page: the box in the header (Ctrl+K or `/`), the
//! results panel (newest first, more as one scrolls), and opening a room
//! at a result, also from the address `/r/{room}?around=ID`.
//!
//! The page asks `GET /api/search` with `fetch`, as bots do, the session
//! cookie going along: the server decides which rooms a caller may read
//! (a visitor: the public ones).

use super::avatar::{hue, initial};
use super::highlight::{Piece, excerpt_start, highlight};
use super::i18n::K;
use super::layout::Layout;
use super::markdown::plain_text;
use super::rooms::{DEFAULT_ROOM, room_href, room_label};
use super::state::Chat;
use super::time;
use crate::protocol::{ErrorCode, MAX_QUERY_CHARS, Message};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Characters of a long message shown before its first match.
const EXCERPT_CONTEXT: usize = 60;
/// How close to the end of the results (px) asks for the next page.
const END_SLACK: i32 = 160;

/// Why a search gave no results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Over [`MAX_QUERY_CHARS`]; not sent.
    TooLong,
    /// The server refused it.
    Refused(ErrorCode),
    /// No answer, or one that is not JSON.
    Unreachable,
}

/// Where the search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing asked yet.
    Idle,
    /// The first page is on its way.
    Searching,
    /// A following page is on its way.
    More,
    Done,
    Failed(Failure),
}

/// One result, with the query it answers (for its marks).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub query: String,
    pub message: Message,
}

/// The search, as long as the page lives (it keeps its results across
/// rooms); cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Search {
    /// The results panel is open.
    pub open: RwSignal<bool>,
    /// A result was opened: on a phone the panel steps aside for the room.
    pub collapsed: RwSignal<bool>,
    /// What the box holds.
    pub text: RwSignal<String>,
    /// The query the results answer.
    pub asked: RwSignal<String>,
    pub hits: RwSignal<Vec<Hit>>,
    next: RwSignal<Option<String>>,
    pub phase: RwSignal<Phase>,
    /// The result opened last: (room, id).
    pub chosen: RwSignal<Option<(String, i64)>>,
    /// Counts searches, so that a late answer to an older one is dropped.
    run: StoredValue<u64>,
}

impl Default for Search {
    fn default() -> Self {
        Self::new()
    }
}

impl Search {
    /// No search yet.
    pub fn new() -> Self {
        Search {
            open: RwSignal::new(false),
            collapsed: RwSignal::new(false),
            text: RwSignal::new(String::new()),
            asked: RwSignal::new(String::new()),
            hits: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            phase: RwSignal::new(Phase::Idle),
            chosen: RwSignal::new(None),
            run: StoredValue::new(0),
        }
    }

    /// Searches what the box holds, from the newest.
    pub fn submit(&self) {
        let query = self.text.get_untracked().trim().to_string();
        if query.is_empty() {
            return;
        }
        self.open.set(true);
        self.collapsed.set(false);
        self.hits.set(Vec::new());
        self.next.set(None);
        self.asked.set(query.clone());
        self.run.update_value(|n| *n += 1);
        if query.chars().count() > MAX_QUERY_CHARS {
            self.phase.set(Phase::Failed(Failure::TooLong));
            return;
        }
        self.phase.set(Phase::Searching);
        self.fetch(query, None);
    }

    /// Asks the page after the last result, if there is one.
    pub fn more(&self) {
        if self.phase.get_untracked() != Phase::Done {
            return;
        }
        let Some(cursor) = self.next.get_untracked() else {
            return;
        };
        self.phase.set(Phase::More);
        self.fetch(self.asked.get_untracked(), Some(cursor));
    }

    /// Closes the panel; its results go.
    pub fn close(&self) {
        self.open.set(false);
        self.collapsed.set(false);
        self.run.update_value(|n| *n += 1);
        self.hits.set(Vec::new());
        self.next.set(None);
        self.phase.set(Phase::Idle);
        self.chosen.set(None);
    }

    /// Whether more results can be asked.
    pub fn has_more(&self) -> bool {
        self.next.with(Option::is_some)
    }

    #[cfg(feature = "hydrate")]
    fn fetch(&self, query: String, cursor: Option<String>) {
        let this = *self;
        let run = self.run.get_value();
        leptos::task::spawn_local(async move {
            let answer = browser::search_page(&query, cursor.as_deref()).await;
            if this.run.try_get_value() != Some(run) {
                return;
            }
            match answer {
                Ok(page) => {
                    this.hits.update(|hits| {
                        hits.extend(page.messages.into_iter().map(|message| Hit {
                            query: query.clone(),
                            message,
                        }))
                    });
                    this.next.set(page.next);
                    this.phase.set(Phase::Done);
                }
                Err(f) => this.phase.set(Phase::Failed(f)),
            }
        });
    }

    #[cfg(not(feature = "hydrate"))]
    fn fetch(&self, _query: String, _cursor: Option<String>) {}
}

/// The search box of the header, and the phone's button that opens it.
#[component]
pub fn SearchBox() -> impl IntoView {
    let search = expect_context::<Search>();
    let layout = expect_context::<Layout>();
    let input = NodeRef::<html::Input>::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        search.submit();
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Escape" if search.open.get_untracked() => {
            ev.prevent_default();
            search.close();
        }
        "ArrowDown" if !search.hits.with_untracked(Vec::is_empty) => {
            ev.prevent_default();
            // On a phone the results may have stepped aside: they show first.
            search.collapsed.set(false);
            request_animation_frame(|| focus_result(0));
        }
        _ => {}
    };
    #[cfg(feature = "hydrate")]
    browser::shortcut(search, input);
    let open_on_phone = move |_| {
        search.open.set(true);
        search.collapsed.set(false);
        focus_box(input);
    };
    view! {
        <button
            class="icon-btn search-btn"
            aria-label=layout.tr(K::OpenSearch)
            on:click=open_on_phone
        >
            <SearchIcon/>
        </button>
        <form class="search-box" role="search" on:submit=on_submit>
            <SearchIcon/>
            <input
                id="search"
                type="search"
                node_ref=input
                autocomplete="off"
                enterkeyhint="search"
                placeholder=layout.tr(K::SearchPlaceholder)
                aria-label=layout.tr(K::SearchLabel)
                aria-keyshortcuts="Control+K /"
                prop:value=move || search.text.get()
                on:input=move |ev| search.text.set(event_target_value(&ev))
                on:keydown=on_key
            />
            <kbd class="search-kbd" aria-hidden="true">"Ctrl K"</kbd>
        </form>
    }
}

/// Focuses the search box, once it shows (on a phone it shows with the panel).
fn focus_box(input: NodeRef<html::Input>) {
    request_animation_frame(move || {
        if let Some(el) = input.get_untracked() {
            let _ = el.focus();
            el.select();
        }
    });
}

/// Focuses the `i`th result's link.
fn focus_result(i: usize) {
    #[cfg(feature = "hydrate")]
    if let Some(el) = document().get_element_by_id(&format!("search-result-{i}")) {
        use wasm_bindgen::JsCast;
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = i;
}

/// The results panel: beside the conversation on a wide screen, over it
/// on a phone (where it steps aside once a result is opened).
#[component]
pub fn SearchPanel() -> impl IntoView {
    let search = expect_context::<Search>();
    let layout = expect_context::<Layout>();
    let chat = expect_context::<Chat>();
    let list = NodeRef::<html::Div>::new();
    let active = RwSignal::new(None::<usize>);

    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked()
            && el.scroll_height() - el.scroll_top() - el.client_height() < END_SLACK
        {
            search.more();
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = search.hits.with_untracked(Vec::len);
        match ev.key().as_str() {
            "Escape" => {
                ev.prevent_default();
                search.close();
                focus_search_box();
            }
            "ArrowDown" if n > 0 => {
                ev.prevent_default();
                let i = active.get_untracked().map_or(0, |i| (i + 1).min(n - 1));
                if i + 1 == n {
                    search.more();
                }
                focus_result(i);
            }
            "ArrowUp" if n > 0 => {
                ev.prevent_default();
                match active.get_untracked() {
                    Some(0) | None => focus_search_box(),
                    Some(i) => focus_result(i - 1),
                }
            }
            _ => {}
        }
    };

    let heading = move || {
        let lang = layout.lang.get();
        match search.phase.get() {
            Phase::Idle => lang.t(K::SearchLabel).to_string(),
            _ => lang.f(K::SearchResultsFor, &[("q", &search.asked.get())]),
        }
    };
    let state = move || {
        let lang = layout.lang.get();
        let text = match search.phase.get() {
            Phase::Idle => lang.t(K::SearchHint).to_string(),
            Phase::Searching => lang.t(K::Searching).to_string(),
            Phase::Done if search.hits.with(Vec::is_empty) => {
                lang.f(K::NoResults, &[("q", &search.asked.get())])
            }
            Phase::Failed(Failure::TooLong) => {
                lang.f(K::SearchTooLong, &[("n", &MAX_QUERY_CHARS.to_string())])
            }
            Phase::Failed(Failure::Refused(code)) => lang.error(code).to_string(),
            Phase::Failed(Failure::Unreachable) => lang.t(K::SearchUnreachable).to_string(),
            _ => return None,
        };
        let class = match search.phase.get() {
            Phase::Failed(_) => "search-state error",
            _ => "search-state",
        };
        Some(view! { <p class=class>{text}</p> })
    };
    let more_label = move || {
        layout.t(if search.phase.get() == Phase::More {
            K::Loading
        } else {
            K::MoreResults
        })
    };
    let back = move |_| {
        search.collapsed.set(false);
        let i = search.chosen.with_untracked(|c| {
            c.as_ref().and_then(|(room, id)| {
                search.hits.with_untracked(|hits| {
                    hits.iter()
                        .position(|h| h.message.room == *room && h.message.id == *id)
                })
            })
        });
        request_animation_frame(move || focus_result(i.unwrap_or(0)));
    };

    view! {
        <Show when=move || search.open.get()>
            <aside
                class="search-panel"
                class:collapsed=move || search.collapsed.get()
                aria-label=layout.tr(K::SearchLabel)
                on:keydown=on_key
            >
                <div class="search-head">
                    <h2 class="search-title">{heading}</h2>
                    <button
                        class="icon-btn close-search"
                        aria-label=layout.tr(K::CloseSearch)
                        on:click=move |_| search.close()
                    >
                        <span aria-hidden="true">"×"</span>
                    </button>
                </div>
                <div class="search-scroll" node_ref=list on:scroll=on_scroll>
                    <Show when=move || !chat.signed_in.get()>
                        <p class="search-note">{layout.tr(K::SearchGuest)}</p>
                    </Show>
                    <div role="status" aria-live="polite">{state}</div>
                    <ol class="results">
                        <For
                            each=move || search.hits.get().into_iter().enumerate()
                            key=|(i, h)| (*i, h.query.clone(), h.message.room.clone(), h.message.id)
                            children=move |(i, hit)| view! { <Result i hit active/> }
                        />
                    </ol>
                    <Show when=move || search.has_more() && matches!(search.phase.get(), Phase::Done | Phase::More)>
                        <button class="older more-results" on:click=move |_| search.more()>
                            {more_label}
                        </button>
                    </Show>
                </div>
            </aside>
            <Show when=move || search.collapsed.get()>
                <button class="back-to-results" on:click=back>
                    <span aria-hidden="true">"← "</span>
                    {layout.tr(K::BackToResults)}
                </button>
            </Show>
        </Show>
    }
}

/// Focuses the header's search box.
fn focus_search_box() {
    #[cfg(feature = "hydrate")]
    if let Some(el) = document().get_element_by_id("search") {
        use wasm_bindgen::JsCast;
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}

/// One result: where, who, when, and the message with its matches marked.
#[component]
fn Result(i: usize, hit: Hit, active: RwSignal<Option<usize>>) -> impl IntoView {
    let search = expect_context::<Search>();
    let layout = expect_context::<Layout>();
    let chat = expect_context::<Chat>();
    let m = hit.message;
    let href = format!("{}?around={}", room_href(&m.room), m.id);
    let room = m.room.clone();
    let id = m.id;
    let where_ = {
        let room = m.room.clone();
        move || room_label(&room, chat.name.get().as_deref())
    };
    let ts = m.ts.clone();
    let when = move || {
        let local = layout.hydrated.get();
        let lang = layout.lang.get();
        let day = time::day(&ts, local)
            .map(|d| time::day_label(d, time::today_if(local), lang))
            .unwrap_or_default();
        format!("{day} {}", time::clock(&ts, local))
    };
    // The words as read, not as typed: `**café**` is found as `café`.
    let text = plain_text(&m.body);
    let start = excerpt_start(&text, &hit.query, EXCERPT_CONTEXT);
    let body = highlight(&text[start..], &hit.query)
        .into_iter()
        .map(|p| match p {
            Piece::Plain(t) => t.to_string().into_any(),
            Piece::Hit(t) => view! { <mark>{t.to_string()}</mark> }.into_any(),
        })
        .collect_view();
    let chosen = {
        let room = room.clone();
        Memo::new(move |_| {
            search
                .chosen
                .with(|c| c.as_ref().is_some_and(|(r, i)| *r == room && *i == id))
        })
    };
    let open = move |ev: leptos::ev::MouseEvent| {
        // A new tab or window keeps this page as it is.
        if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
            return;
        }
        search.chosen.set(Some((room.clone(), id)));
        search.collapsed.set(true);
        // The router follows the link; this opens the message again when
        // the address is already this one.
        chat.jump_to(&room, id);
    };
    view! {
        <li class="result" style=format!("--hue:{}", hue(&m.author))>
            <a
                id=format!("search-result-{i}")
                href=href
                class:chosen=chosen
                aria-current=move || chosen.get().then_some("true")
                on:click=open
                on:focus=move |_| active.set(Some(i))
            >
                <span class="avatar small" aria-hidden="true">{initial(&m.author)}</span>
                <span class="result-main">
                    <span class="result-meta">
                        <span class="author">{m.author.clone()}</span>
                        <span class="result-room">{where_}</span>
                        <time datetime=m.ts.clone()>{when}</time>
                    </span>
                    <span class="result-text">{(start > 0).then_some("…")}{body}</span>
                </span>
            </a>
        </li>
    }
}

/// Opens the room in view at the message the address names
/// (`/r/{room}?around=ID`), or that a result asked for: scrolls to it and
/// highlights it briefly, or says it is gone.
#[component]
pub fn JumpToMessage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let params = use_params_map();
    let query = use_query_map();
    let missing = RwSignal::new(false);
    // The address's (room, id) last opened: the same address opens it once.
    let opened = StoredValue::new(None::<(String, i64)>);
    Effect::new(move |_| {
        let room = params
            .read()
            .get("room")
            .unwrap_or_else(|| DEFAULT_ROOM.to_string());
        let around = query
            .read()
            .get("around")
            .and_then(|a| a.parse::<i64>().ok());
        let Some(id) = around else {
            opened.set_value(None);
            return;
        };
        if opened.with_value(|o| o.as_ref() == Some(&(room.clone(), id))) {
            return;
        }
        opened.set_value(Some((room.clone(), id)));
        chat.jump_to(&room, id);
    });

    let jump = Memo::new(move |_| chat.jump());
    Effect::new(move |_| {
        let Some((j, found)) = jump.get() else {
            return;
        };
        if j.room != chat.current.get() {
            return;
        }
        if j.missing {
            chat.jump_done();
            missing.set(true);
            set_timeout(
                move || {
                    let _ = missing.try_set(false);
                },
                std::time::Duration::from_secs(6),
            );
            return;
        }
        if found {
            chat.jump_done();
            // After the list shows the lines and keeps its own scroll.
            request_animation_frame(move || {
                request_animation_frame(move || show_message(j.id));
            });
        }
    });
    view! {
        <Show when=move || missing.get()>
            <p class="toast" role="status">{layout.tr(K::MessageMissing)}</p>
        </Show>
    }
}

/// Scrolls the list to a message and marks it for a moment.
fn show_message(id: i64) {
    #[cfg(feature = "hydrate")]
    {
        let selector = format!(".messages li[data-id=\"{id}\"]");
        let Ok(Some(el)) = document().query_selector(&selector) else {
            return;
        };
        let opts = web_sys::ScrollIntoViewOptions::new();
        opts.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&opts);
        let _ = el.set_attribute("data-jumped", "");
        set_timeout(
            move || {
                let _ = el.remove_attribute("data-jumped");
            },
            std::time::Duration::from_secs(4),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

#[component]
fn SearchIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
            <circle cx="11" cy="11" r="6.5" fill="none" stroke="currentColor" stroke-width="2"/>
            <path d="M16 16l4.5 4.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>
        </svg>
    }
}

/// What runs only in the browser: the request, the keyboard shortcut.
#[cfg(feature = "hydrate")]
mod browser {
    use super::{Failure, Search, focus_box};
    use crate::protocol::{ApiError, SearchPage};
    use leptos::html;
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;

    /// One page of `GET /api/search`.
    pub async fn search_page(query: &str, cursor: Option<&str>) -> Result<SearchPage, Failure> {
        let mut url = format!("/api/search?q={}", js_sys::encode_uri_component(query));
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={}", js_sys::encode_uri_component(c)));
        }
        let resp = gloo_net::http::Request::get(&url)
            .send()
            .await
            .map_err(|_| Failure::Unreachable)?;
        if resp.ok() {
            return resp.json().await.map_err(|_| Failure::Unreachable);
        }
        match resp.json::<ApiError>().await {
            Ok(e) => Err(Failure::Refused(e.error.code)),
            Err(_) => Err(Failure::Unreachable),
        }
    }

    /// Ctrl+K (or ⌘K) anywhere, `/` outside text fields: to the search box.
    pub fn shortcut(search: Search, input: NodeRef<html::Input>) {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            let ctrl_k = (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("k");
            let slash = ev.key() == "/" && !ev.ctrl_key() && !ev.meta_key() && !in_text_field(&ev);
            if !(ctrl_k || slash) {
                return;
            }
            ev.prevent_default();
            // On a phone the box shows with the panel.
            let hidden = input
                .get_untracked()
                .is_none_or(|el| el.client_width() == 0);
            if hidden {
                search.open.set(true);
                search.collapsed.set(false);
            }
            focus_box(input);
        });
        on_cleanup(move || handle.remove());
    }

    fn in_text_field(ev: &web_sys::KeyboardEvent) -> bool {
        let Some(el) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            return false;
        };
        matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            || el.is_content_editable()
    }
}
