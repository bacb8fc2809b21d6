//! A message's files in the conversation: images as thumbnails sized
//! before they load (the list never jumps), other files as cards with a
//! download link; and the image viewer, a modal dialog that steps through
//! the images of the room's loaded messages (Left/Right), closes on
//! Escape and gives the focus back to the thumbnail.

use super::chat_state::Line;
use super::file_info::{THUMB_BOX, fit, human_size, kind};
use super::i18n::K;
use super::layout::Layout;
use super::state::Chat;
use crate::protocol::FileObject;
use leptos::html;
use leptos::prelude::*;

/// An image the viewer can show, with the tag of its thumbnail.
type Shown = (String, FileObject);

/// The viewer's state: the room's images when it opened, and the one shown.
#[derive(Clone, Copy)]
pub struct Viewer(RwSignal<Option<(Vec<Shown>, usize)>>);

impl Viewer {
    /// A closed viewer.
    pub fn new() -> Self {
        Viewer(RwSignal::new(None))
    }
}

impl Default for Viewer {
    fn default() -> Self {
        Self::new()
    }
}

/// The tag of a message's `i`-th file: its thumbnail's `data-thumb`.
fn tag(line_key: &str, i: usize) -> String {
    format!("{line_key}#{i}")
}

/// The images of the shown messages, oldest first, with their tags; not
/// those of deleted messages.
pub fn images_of(lines: &[Line]) -> Vec<Shown> {
    lines
        .iter()
        .filter(|l| !l.deleted)
        .flat_map(|l| {
            let key = l.key();
            l.attachments
                .iter()
                .enumerate()
                .filter(|(_, f)| f.is_image())
                .map(move |(i, f)| (tag(&key, i), f.clone()))
        })
        .collect()
}

/// The files of one message.
#[component]
pub fn Attachments(
    /// The message's files.
    files: Vec<FileObject>,
    /// The line's key, which names its thumbnails.
    line_key: String,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let viewer = expect_context::<Viewer>();
    let items = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let t = tag(&line_key, i);
            match (f.width, f.height) {
                (Some(w), Some(h)) => {
                    let (w, h) = fit(w, h, THUMB_BOX);
                    let data = t.clone();
                    let open = move |_| {
                        let all = chat.here_untracked().lines.with_untracked(|ls| images_of(ls));
                        if let Some(at) = all.iter().position(|(s, _)| *s == t) {
                            viewer.0.set(Some((all, at)));
                        }
                    };
                    view! {
                        <button class="thumb" type="button" data-thumb=data on:click=open>
                            <img src=f.thumb_url() width=w height=h loading="lazy" alt=f.name.clone()/>
                        </button>
                    }
                    .into_any()
                }
                _ => view! { <FileCard file=f/> }.into_any(),
            }
        })
        .collect_view();
    view! { <div class="attachments">{items}</div> }
}

/// A file that is not an image: its icon, name, size and type, and a
/// download link.
#[component]
fn FileCard(file: FileObject) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let (class, label) = kind(&file.mime, &file.name);
    let size = file.size;
    let name = file.name.clone();
    let download = move || layout.lang.get().f(K::DownloadName, &[("name", &name)]);
    view! {
        <div class="file-card">
            <span class=format!("file-icon {class}") aria-hidden="true">{label}</span>
            <div class="file-info">
                <span class="file-name" title=file.name.clone()>{file.name.clone()}</span>
                <span class="file-meta">
                    {move || human_size(size, layout.lang.get())} " · " {file.mime.clone()}
                </span>
            </div>
            <a class="file-download" href=file.url() download=file.name.clone() aria-label=download>
                <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                    <path d="M12 4v11m-5-5 5 5 5-5M5 20h14" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>
                </svg>
                <span class="file-download-label">{layout.tr(K::Download)}</span>
            </a>
        </div>
    }
}

/// The image viewer, once per message list.
#[component]
pub fn ImageViewer() -> impl IntoView {
    let layout = expect_context::<Layout>();
    let viewer = expect_context::<Viewer>().0;
    let el = NodeRef::<html::Dialog>::new();
    // A frame later: the image is drawn in the dialog by then, so that
    // opening focuses its close button (`autofocus`).
    Effect::new(move |_| {
        let want = viewer.with(Option::is_some);
        request_animation_frame(move || {
            let Some(Some(d)) = el.try_get_untracked() else {
                return;
            };
            if want && !d.open() {
                let _ = d.show_modal();
            } else if !want && d.open() {
                d.close();
            }
        });
    });
    let current = move || {
        viewer.with(|v| {
            v.as_ref()
                .and_then(|(all, at)| all.get(*at).map(|s| (s.clone(), *at, all.len())))
        })
    };
    let step = move |by: isize| {
        viewer.update(|v| {
            if let Some((all, at)) = v {
                let to = (*at as isize + by).clamp(0, all.len() as isize - 1);
                *at = to as usize;
            }
        })
    };
    // Escape and the close button end here: the focus goes back to the
    // thumbnail of the image last shown.
    let on_close = move |_| {
        let shown = untrack(current).map(|((t, _), _, _)| t);
        viewer.set(None);
        if let Some(t) = shown {
            focus_thumb(&t);
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowLeft" => {
            ev.prevent_default();
            step(-1);
        }
        "ArrowRight" => {
            ev.prevent_default();
            step(1);
        }
        _ => {}
    };
    let close = move |_| {
        if let Some(d) = el.get_untracked() {
            d.close();
        }
    };
    view! {
        <dialog
            class="viewer"
            node_ref=el
            aria-labelledby="viewer-title"
            on:close=on_close
            on:keydown=on_keydown
        >
            {move || current().map(|((_, f), at, n)| {
                let count = layout
                    .lang
                    .get()
                    .f(K::ImageCount, &[("i", &(at + 1).to_string()), ("n", &n.to_string())]);
                let (w, h) = (f.width.unwrap_or(0), f.height.unwrap_or(0));
                // Computed here: a `>` inside the view's attribute would end the tag.
                let (first, last) = (at == 0, at + 1 >= n);
                view! {
                    <div class="viewer-bar">
                        <h2 id="viewer-title" class="viewer-title">{f.name.clone()}</h2>
                        <span class="viewer-count">{count}</span>
                        <a class="viewer-download" href=f.url() download=f.name.clone()>
                            {layout.tr(K::Download)}
                        </a>
                        <button class="icon-btn viewer-close" autofocus=true aria-label=layout.tr(K::Close) on:click=close>
                            "×"
                        </button>
                    </div>
                    <div class="viewer-stage">
                        <button
                            class="icon-btn viewer-step"
                            aria-label=layout.tr(K::PreviousImage)
                            disabled=first
                            on:click=move |_| step(-1)
                        >
                            "‹"
                        </button>
                        <img class="viewer-image" src=f.url() alt=f.name.clone() width=w height=h/>
                        <button
                            class="icon-btn viewer-step"
                            aria-label=layout.tr(K::NextImage)
                            disabled=last
                            on:click=move |_| step(1)
                        >
                            "›"
                        </button>
                    </div>
                }
            })}
        </dialog>
    }
}

/// Focuses the thumbnail of that tag, if it is still on the page.
fn focus_thumb(t: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(list) = document().query_selector_all("[data-thumb]").ok() else {
            return;
        };
        for i in 0..list.length() {
            if let Some(el) = list
                .item(i)
                .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
                && el.get_attribute("data-thumb").as_deref() == Some(t)
            {
                let _ = el.focus();
                return;
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = t;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::chat_state::Delivery;

    fn line(id: i64, files: Vec<FileObject>, deleted: bool) -> Line {
        Line {
            id: Some(id),
            author: "a".into(),
            body: String::new(),
            ts: None,
            nonce: None,
            delivery: Delivery::Stored,
            reply_to: None,
            mentions: Vec::new(),
            reactions: Default::default(),
            edited: None,
            deleted,
            attachments: files,
        }
    }

    #[test]
    fn the_viewer_steps_through_the_images_of_shown_messages() {
        let img = |id: &str| FileObject {
            id: id.into(),
            width: Some(2),
            height: Some(2),
            ..Default::default()
        };
        let doc = FileObject {
            id: "d".into(),
            ..Default::default()
        };
        let lines = vec![
            line(1, vec![doc, img("x")], false),
            line(2, vec![img("gone")], true),
            line(3, vec![img("y"), img("z")], false),
        ];
        let tags: Vec<(String, String)> = images_of(&lines)
            .into_iter()
            .map(|(t, f)| (t, f.id))
            .collect();
        assert_eq!(
            tags,
            vec![
                ("i:1#1".into(), "x".into()),
                ("i:3#0".into(), "y".into()),
                ("i:3#1".into(), "z".into()),
            ]
        );
    }
}
