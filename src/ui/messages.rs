//! The conversation: day separators, messages grouped by author, links,
//! pending and failed sends, scroll-back at the top, and staying at the
//! bottom as messages arrive unless the reader scrolled up.

use super::attachments::{Attachments, ImageViewer, Viewer};
use super::avatar::{hue, initial};
use super::chat_state::{Access, Delivery, Line, Status, mentions_me};
use super::conversation::{
    ConfirmDelete, ConvUi, EditBox, MessageActions, ReactionPicker, Reactions, ReplyQuote,
};
use super::i18n::K;
use super::layout::Layout;
use super::markdown::MessageBody;
use super::rooms::{dm_peer, is_dm, room_label};
use super::snapshot::SnapProblem;
use super::state::Chat;
use super::time;
use leptos::html;
use leptos::prelude::*;

/// How close to the bottom (px) still counts as at the bottom.
const BOTTOM_SLACK: i32 = 40;
/// How close to the top (px) asks for older messages.
const TOP_SLACK: i32 = 200;

/// Consecutive messages of one author in the same ten minutes share a header.
fn same_group(prev: &Line, line: &Line) -> bool {
    prev.author == line.author
        && match (&prev.ts, &line.ts) {
            (Some(a), Some(b)) => a.get(0..15) == b.get(0..15),
            _ => true,
        }
}

/// A row of the list: the line, whether it continues a group, and the day
/// separator above it.
type Row = (Line, bool, Option<String>);

/// The message list of the room in view.
#[component]
pub fn MessageList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let scroller = NodeRef::<html::Div>::new();
    let at_bottom = RwSignal::new(true);
    // Messages that arrived below while the reader was scrolled up.
    let unseen = RwSignal::new(0usize);
    let last_height = StoredValue::new(0i32);
    // (room, first id, last id) at the last look.
    let seen = StoredValue::new((String::new(), None::<i64>, None::<i64>));
    // The scroll position at the last scroll event.
    let last_top = StoredValue::new(0i32);
    let ui = ConvUi::new();
    provide_context(ui);
    let new_line = NewLine(RwSignal::new(None));
    provide_context(new_line);
    provide_context(Viewer::new());
    // The room shown from its first unread message (or its bottom) in the
    // visible tab; none while the tab is hidden, so that coming back shows
    // what came meanwhile the same way.
    let opened = StoredValue::new(None::<String>);
    // The room whose opening waits for its frames.
    let opening = StoredValue::new(None::<String>);

    // What is on screen in a visible tab is read; what merely arrived is
    // not. Nothing counts before the room was opened at its first unread.
    // Called from later frames too: the list, or the whole page, may be
    // gone by then.
    let read_on_screen = move || {
        let Some(Some(el)) = scroller.try_get_untracked() else {
            return;
        };
        if !chat.alive() || !chat.visible.get_untracked() {
            return;
        }
        let room = chat.here_untracked();
        let ready = opened
            .try_with_value(|o| o.as_deref() == Some(room.name().as_str()))
            .unwrap_or(false);
        if ready && let Some(id) = newest_on_screen(&el) {
            chat.mark_read(room, id);
        }
    };

    // Opening a room (or coming back to the tab): the "New messages" line
    // above the first unread message, brought into view; everything read
    // already, the list stays at the bottom. Once the read positions are
    // known: an account's come from the server.
    Effect::new(move |_| {
        let room = chat.here();
        let name = room.name();
        if !chat.visible.get() {
            opened.set_value(None);
            opening.set_value(None);
            return;
        }
        if !chat.reads_known.get() || !room.loaded.get() {
            return;
        }
        let this = |o: &Option<String>| o.as_deref() == Some(name.as_str());
        if opened.with_value(this) || opening.with_value(this) {
            return;
        }
        opening.set_value(Some(name.clone()));
        // Two frames: after the list effect below has placed the new lines.
        request_animation_frame(move || {
            request_animation_frame(move || {
                // The list (or the page) may be gone by now.
                if opening.is_disposed() || !chat.alive() {
                    return;
                }
                opening.set_value(None);
                if chat.current.try_get_untracked().as_deref() != Some(name.as_str())
                    || !chat.visible.get_untracked()
                {
                    return;
                }
                let me = chat.name.get_untracked();
                let first = room.first_unread(me.as_deref());
                // From now on, what is on screen is read (not before: the
                // first unread must be found first).
                opened.set_value(Some(name.clone()));
                match first {
                    Some(id) => new_line.0.set(Some((name.clone(), id))),
                    // Coming back with nothing new keeps the line where it was.
                    None if new_line
                        .0
                        .with_untracked(|l| l.as_ref().is_some_and(|(r, _)| *r != name)) =>
                    {
                        new_line.0.set(None)
                    }
                    None => {}
                }
                // A search result or a reply's original is being shown: it wins.
                let elsewhere =
                    untrack(|| chat.jump().is_some()) || room.seeking.get_untracked().is_some();
                let Some(id) = first.filter(|_| !elsewhere) else {
                    read_on_screen();
                    return;
                };
                // One more frame: the line is drawn, the message is where it stays.
                request_animation_frame(move || {
                    let Some(Some(el)) = scroller.try_get_untracked() else {
                        return;
                    };
                    if let Ok(Some(li)) = el.query_selector(&format!("li[data-id=\"{id}\"]")) {
                        scroll_to_top(&el, &li);
                        let bottom = el.scroll_height() - el.scroll_top() - el.client_height()
                            < BOTTOM_SLACK;
                        at_bottom.set(bottom);
                        last_top.set_value(el.scroll_top());
                    }
                    read_on_screen();
                });
            });
        });
    });

    // A reply's original sought and now shown: bring it into view, briefly
    // highlighted. Two frames: after the list keeps its place above.
    Effect::new(move |_| {
        let room = chat.here();
        let Some((id, None)) = room.seeking.get() else {
            return;
        };
        request_animation_frame(move || {
            request_animation_frame(move || {
                let Some(Some(el)) = scroller.try_get_untracked() else {
                    return;
                };
                if let Ok(Some(li)) = el.query_selector(&format!("li[data-id=\"{id}\"]")) {
                    scroll_to_middle(&li);
                    at_bottom.set(false);
                    ui.flash(id);
                }
                chat.sought(room);
            });
        });
    });

    let rows = move || -> Vec<Row> {
        let room = chat.here();
        let local = layout.hydrated.get();
        let lang = layout.lang.get();
        let today = time::today_if(local);
        room.lines.with(|ls| {
            let mut prev_day = None;
            ls.iter()
                .enumerate()
                .map(|(i, l)| {
                    let day = l.ts.as_deref().and_then(|ts| time::day(ts, local));
                    let sep = match day {
                        Some(d) if Some(d) != prev_day => {
                            prev_day = Some(d);
                            Some(time::day_label(d, today, lang))
                        }
                        _ => None,
                    };
                    let cont = sep.is_none() && i > 0 && same_group(&ls[i - 1], l);
                    (l.clone(), cont, sep)
                })
                .collect()
        })
    };

    // Keep the newest message in view unless the reader scrolled up; keep
    // the same messages in view when older ones come in above.
    Effect::new(move |_| {
        let room = chat.here();
        let name = room.name();
        let (first, last, own_pending) = room.lines.with(|ls| {
            (
                ls.iter().find_map(|l| l.id),
                ls.iter().rev().find_map(|l| l.id),
                ls.last().is_some_and(|l| l.delivery == Delivery::Pending),
            )
        });
        scroller.track();
        // Measure once the list shows the new lines: after the DOM update.
        request_animation_frame(move || {
            // The list may be gone (another room) by the next frame.
            let Some(Some(el)) = scroller.try_get_untracked() else {
                return;
            };
            let Some((prev_room, prev_first, prev_last)) = seen.try_get_value() else {
                return;
            };
            if prev_room != name {
                at_bottom.set(true);
                unseen.set(0);
                el.set_scroll_top(el.scroll_height());
            } else if prev_first.is_some() && first != prev_first && last == prev_last {
                // Older messages came in above: keep the same ones in view.
                let grown = el.scroll_height() - last_height.get_value();
                el.set_scroll_top(el.scroll_top() + grown);
            } else if at_bottom.get_untracked() || own_pending {
                el.set_scroll_top(el.scroll_height());
                at_bottom.set(true);
            } else if last != prev_last {
                let new = room.lines.with_untracked(|ls| {
                    ls.iter()
                        .filter(|l| l.id.is_some_and(|id| prev_last.is_none_or(|p| id > p)))
                        .count()
                });
                unseen.update(|n| *n += new);
            }
            last_height.set_value(el.scroll_height());
            seen.set_value((name, first, last));
            read_on_screen();
        });
    });

    let to_bottom = move || {
        if let Some(el) = scroller.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
        at_bottom.set(true);
        unseen.set(0);
    };

    let on_scroll = move |_| {
        let Some(el) = scroller.get_untracked() else {
            return;
        };
        // Only a scroll up leaves the bottom: messages coming faster than
        // frames grow the list past the slack between our own scrolls down.
        let top = el.scroll_top();
        let down = top >= last_top.get_value();
        last_top.set_value(top);
        let bottom = el.scroll_height() - top - el.client_height() < BOTTOM_SLACK
            || (down && at_bottom.get_untracked());
        if bottom != at_bottom.get_untracked() {
            at_bottom.set(bottom);
        }
        if bottom && unseen.get_untracked() > 0 {
            unseen.set(0);
        }
        last_height.set_value(el.scroll_height());
        if el.scroll_top() < TOP_SLACK {
            chat.load_older(chat.here_untracked());
        }
        read_on_screen();
    };

    let jump_label = move || {
        let lang = layout.lang.get();
        match unseen.get() {
            0 => lang.t(K::JumpNewest).to_string(),
            n => lang.plural(n, K::NewMessagesOne, K::NewMessagesMany),
        }
    };

    view! {
        <div class="scroller" node_ref=scroller on:scroll=on_scroll>
            <TopOfRoom/>
            {move || {
                // A fresh list per room: screen readers announce what is
                // added to a log, not a whole room shown anew.
                let name = chat.current.get();
                let label = move || {
                    layout.lang
                        .get()
                        .f(K::MessagesIn, &[("room", &room_label(&name, chat.name.get().as_deref()))])
                };
                view! {
                    <div
                        class="log"
                        role="log"
                        aria-label=label
                        aria-busy=move || chat.here().loading_older.get().to_string()
                    >
                        <ol class="messages">
                            <For
                                each=rows
                                key=|(l, cont, day)| format!("{}|{:?}|{}|{:?}|{:?}|{}", l.key(), l.delivery, cont, day, l.edited, l.deleted)
                                children=move |(line, cont, day)| view! { <MessageRow line cont day/> }
                            />
                        </ol>
                    </div>
                }
            }}
            <EmptyRoom/>
        </div>
        <Show when=move || !at_bottom.get()>
            <button class="jump" class=("has-new", move || unseen.get() > 0) on:click=move |_| to_bottom()>
                <span aria-hidden="true">"↓ "</span>
                {jump_label}
            </button>
        </Show>
        <ImageViewer/>
    }
}

/// Above the messages: why the room cannot be shown, the button for older
/// messages, or the beginning of a private conversation.
#[component]
fn TopOfRoom() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    move || {
        let room = chat.here();
        let name = room.name();
        if let Some(by) = room.removed_by.get() {
            return super::members::removed_notice(layout, chat, &name, &by).into_any();
        }
        // A direct room one is not in, whether the server's render or the
        // socket said so: the same box.
        let refused = room.problem.get() == Some(SnapProblem::Forbidden)
            || room.access.get() == Access::Refused && room.problem.get().is_none();
        if refused {
            return view! {
                <div class="problem refused" role="alert">
                    <p class="problem-title">{layout.t(K::Private)}</p>
                    <p>{refusal(layout, chat, &name)}</p>
                </div>
            }
            .into_any();
        }
        if let Some(p) = room.problem.get() {
            let text = layout.t(match p {
                SnapProblem::BadRoom => K::BadRoom,
                SnapProblem::Unavailable => K::HistoryUnavailable,
                SnapProblem::NotFound => K::NoSuchRoom,
                SnapProblem::Forbidden => K::ForbiddenDm,
                SnapProblem::SignIn => K::SignInToRead,
            });
            return view! { <p class="problem" role="alert">{text}</p> }.into_any();
        }
        if room.more.get() {
            let label = move || {
                layout.t(if room.loading_older.get() {
                    K::Loading
                } else {
                    K::LoadOlder
                })
            };
            return view! {
                <button class="older" on:click=move |_| chat.load_older(room)>
                    {label}
                </button>
            }
            .into_any();
        }
        match private_note(layout, &name) {
            Some(note) => view! {
                <div class="dm-intro">
                    <p class="problem-title">{layout.t(K::Private)}</p>
                    <p>{note}</p>
                </div>
            }
            .into_any(),
            None => ().into_any(),
        }
    }
}

/// "No messages yet", or "Loading…" while the room's lines are not known.
#[component]
fn EmptyRoom() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    move || {
        let room = chat.here();
        let name = room.name();
        let access = room.access.get();
        if room.problem.get().is_some()
            || access == Access::Refused
            || !room.lines.with(Vec::is_empty)
        {
            return ().into_any();
        }
        if is_dm(&name) {
            // The private note says what the room is.
            return ().into_any();
        }
        if room.loaded.get() {
            view! { <p class="empty">{layout.t(K::Empty)}</p> }.into_any()
        } else {
            view! { <p class="loading">{layout.t(K::Loading)}</p> }.into_any()
        }
    }
}

/// Where the "New messages" line is: the room and the first unread
/// message when the room was opened.
#[derive(Clone, Copy)]
struct NewLine(RwSignal<Option<(String, i64)>>);

/// One message.
#[component]
fn MessageRow(line: Line, cont: bool, day: Option<String>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let layout = expect_context::<Layout>();
    let room = chat.here_untracked();
    let ui = expect_context::<ConvUi>();
    let new_line = expect_context::<NewLine>().0;
    let class = match (&line.delivery, cont) {
        (Delivery::Pending, true) => "msg cont pending",
        (Delivery::Pending, false) => "msg pending",
        (Delivery::Failed(_), true) => "msg cont failed",
        (Delivery::Failed(_), false) => "msg failed",
        (Delivery::Stored, true) => "msg cont",
        (Delivery::Stored, false) => "msg",
    };
    let me = chat.name.get_untracked();
    let mentions_me =
        mentions_me(&line.mentions, me.as_deref()) && me.as_deref() != Some(line.author.as_str());
    let class = format!(
        "{class}{}{}",
        if mentions_me { " mentions-me" } else { "" },
        if line.deleted { " deleted" } else { "" }
    );
    let id = line.id;
    let editing = move || id.is_some() && room.editing.get() == id;
    let edited = line.edited.clone().map(|at| {
        let title = layout
            .lang
            .get_untracked()
            .f(K::EditedAt, &[("time", &time::full(&at))]);
        view! { <span class="edited" title=title>{layout.tr(K::Edited)}</span> }
    });
    let quote = line
        .reply_to
        .filter(|_| !line.deleted)
        .map(|r| view! { <ReplyQuote room id=r/> });
    let actions = view! { <MessageActions room line=line.clone()/> };
    let edit_body = line.body.clone();
    let deleted = line.deleted;
    // Deleted messages show no files.
    let files = (!deleted && !line.attachments.is_empty()).then(|| {
        view! { <Attachments files=line.attachments.clone() line_key=line.key()/> }
    });
    // A tap opens the actions on screens without hover; not a tap on a
    // button, link or field inside.
    let on_tap = move |ev: leptos::ev::MouseEvent| {
        let Some(id) = id else { return };
        if deleted || tapped_control(&ev) {
            return;
        }
        ui.active
            .update(|a| *a = if *a == Some(id) { None } else { Some(id) });
    };
    let ts = line.ts.clone().unwrap_or_default();
    let ts_title = time::full(&ts);
    let ts_attr = ts.clone();
    let clock = move || time::clock(&ts, layout.hydrated.get());
    let style = format!("--hue:{}", hue(&line.author));
    let failed = match &line.delivery {
        Delivery::Failed(code) => Some(*code),
        _ => None,
    };
    let nonce = line.nonce.clone();
    let retry = move |_| {
        if let Some(n) = nonce.as_deref() {
            chat.retry(room, n);
        }
    };
    let time_el = view! {
        <time datetime=ts_attr title=ts_title>
            {clock}
        </time>
    };
    let (head, side) = if cont {
        (None, Some(time_el))
    } else {
        (
            Some(view! {
                <div class="meta">
                    <span class="author">{line.author.clone()}</span>
                    {time_el}
                </div>
            }),
            None,
        )
    };
    view! {
        <li
            class=class
            class:flash=move || id.is_some() && ui.flash.get() == id
            class:actions-open=move || id.is_some() && ui.active.get() == id
            data-id=line.id.map(|i| i.to_string())
            style=style
        >
            {
                let here = room.name();
                let first_new = move || {
                    new_line.with(|l| l.as_ref().is_some_and(|(r, i)| *r == here && Some(*i) == id))
                };
                view! {
                    <Show when=first_new>
                        <p class="new-line" role="separator">
                            <span>{layout.tr(K::NewMessagesLine)}</span>
                        </p>
                    </Show>
                }
            }
            {day.map(|d| view! { <p class="day"><span>{d}</span></p> })}
            <div class="msg-row" on:click=on_tap>
                <div class="gutter">
                    {(!cont).then(|| view! { <span class="avatar" aria-hidden="true">{initial(&line.author)}</span> })}
                    {side}
                </div>
                <div class="msg-main">
                    {head}
                    {quote}
                    {if deleted {
                        view! { <p class="text deleted-note">{layout.tr(K::MessageDeleted)}</p> }.into_any()
                    } else {
                        view! {
                            <div class="body-wrap" class:hidden=editing>
                                // A file may come without a caption.
                                {(!line.body.is_empty()).then(|| view! { <MessageBody body=line.body.clone() me=chat.name/> })}
                                {edited}
                            </div>
                            <Show when=editing>
                                <EditBox room body=edit_body.clone()/>
                            </Show>
                            {files}
                        }
                        .into_any()
                    }}
                    {id.map(|id| view! {
                        <Reactions room id/>
                        <Show when=move || ui.picker.get() == Some(id)>
                            <ReactionPicker room id/>
                        </Show>
                        <Show when=move || ui.confirm.get() == Some(id)>
                            <ConfirmDelete room id/>
                        </Show>
                    })}
                    {(line.delivery == Delivery::Pending)
                        .then(|| {
                            // Not connected: kept in this browser until the connection is back.
                            let waiting = move || chat.status.get() != Status::Connected;
                            view! {
                                <span class="state" class:waiting=waiting>
                                    {move || layout.t(if waiting() { K::Waiting } else { K::Sending })}
                                </span>
                            }
                        })}
                    {failed.map(|code| view! {
                        <p class="state error">
                            {layout.tr(K::NotSent)} " "
                            {move || layout.lang.get().error(code)} " "
                            <button class="link" on:click=retry>{layout.tr(K::Retry)}</button>
                        </p>
                    })}
                </div>
                {actions}
            </div>
        </li>
    }
    .into_any()
}

/// Whether a click landed on a control inside the message (a button, a
/// link, a field), not on the message itself.
fn tapped_control(ev: &leptos::ev::MouseEvent) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        ev.target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| {
                e.closest("button, a, textarea, input, .picker, .confirm")
                    .ok()
                    .flatten()
            })
            .is_some()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        true
    }
}

/// The id of the newest message at least partly inside the list's
/// visible area.
fn newest_on_screen(list: &leptos::web_sys::Element) -> Option<i64> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let view = list.get_bounding_client_rect();
        let items = list.query_selector_all("ol.messages > li[data-id]").ok()?;
        // Newest last: walk up from the bottom to the first one in view.
        for i in (0..items.length()).rev() {
            let Some(el) = items
                .item(i)
                .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
            else {
                continue;
            };
            let r = el.get_bounding_client_rect();
            if r.top() >= view.bottom() {
                continue;
            }
            if r.bottom() <= view.top() {
                return None;
            }
            return el.get_attribute("data-id")?.parse().ok();
        }
        None
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = list;
        None
    }
}

/// Scrolls the list so that an element of it shows near its top, with a
/// little of what came before above it.
fn scroll_to_top(list: &leptos::web_sys::Element, el: &leptos::web_sys::Element) {
    #[cfg(feature = "hydrate")]
    {
        /// How much (px) of what was read shows above the first unread message.
        const CONTEXT_ABOVE: i32 = 48;
        let top = el.get_bounding_client_rect().top() - list.get_bounding_client_rect().top();
        list.set_scroll_top(list.scroll_top() + top as i32 - CONTEXT_ABOVE);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (list, el);
}

/// Scrolls an element to the middle of its list.
fn scroll_to_middle(el: &leptos::web_sys::Element) {
    #[cfg(feature = "hydrate")]
    {
        let opts = web_sys::ScrollIntoViewOptions::new();
        opts.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&opts);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = el;
}

/// The note above an empty direct-message room.
fn private_note(layout: Layout, room: &str) -> Option<String> {
    let lang = layout.lang.get();
    match crate::protocol::parse_room(room) {
        Ok(crate::protocol::RoomKind::Direct(names)) => {
            let (last, first) = names.split_last()?;
            Some(lang.f(K::PrivateNote, &[("a", &first.join(", ")), ("b", last)]))
        }
        _ => None,
    }
}

/// Why a direct-message room was refused, for a person.
fn refusal(layout: Layout, chat: Chat, room: &str) -> &'static str {
    let me = chat.name.get();
    if dm_peer(room, me.as_deref()).is_some() {
        // One of the two members, refused all the same: a guest without the cookie.
        layout.t(K::GuestDm)
    } else {
        layout.t(K::ForbiddenDm)
    }
}
