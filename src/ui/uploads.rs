//! The composer's files on their way to the server: the queue of uploads
//! shown as chips above the message box (name, size, progress, the
//! server's refusal), how files come in (the attach button, a paste, a drop
//! on the conversation), and the `POST /api/files` request that carries
//! each one. That request is an XMLHttpRequest: it reports upload progress
//! and can be aborted, which fetch cannot.
//!
//! Sending waits for nothing: the send button is off while a file is still
//! uploading, and says why if Enter is pressed meanwhile.

use super::file_info::{human_size, kind};
use super::i18n::{K, Lang};
use super::layout::Layout;
use crate::protocol::{FileObject, MAX_ATTACHMENTS};
use leptos::prelude::*;

/// Where one upload stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Bytes sent so far.
    Sending(u64),
    /// Stored: the server's description, whose id the message names.
    Done(FileObject),
    /// Refused or broken, and why, for the person.
    Failed(String),
}

/// One file of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub key: u32,
    pub name: String,
    pub size: u64,
    /// A local `blob:` address of an image, shown in its chip.
    pub preview: Option<String>,
    pub progress: Progress,
}

/// The files the next message carries, in the order they came.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    pub items: Vec<Upload>,
    next: u32,
}

impl Queue {
    /// Queues a file to upload and returns its key; `None` when the
    /// message has all the files it may carry, and the file shows refused
    /// with `full` as the reason.
    pub fn add(&mut self, name: String, size: u64, full: String) -> Option<u32> {
        let key = self.next;
        self.next += 1;
        let taken = self
            .items
            .iter()
            .filter(|u| !matches!(u.progress, Progress::Failed(_)))
            .count();
        let room = taken < MAX_ATTACHMENTS;
        self.items.push(Upload {
            key,
            name,
            size,
            preview: None,
            progress: if room {
                Progress::Sending(0)
            } else {
                Progress::Failed(full)
            },
        });
        room.then_some(key)
    }

    /// The upload of that key.
    pub fn get(&self, key: u32) -> Option<&Upload> {
        self.items.iter().find(|u| u.key == key)
    }

    fn sending(&mut self, key: u32) -> Option<&mut Upload> {
        self.items
            .iter_mut()
            .find(|u| u.key == key && matches!(u.progress, Progress::Sending(_)))
    }

    /// Sets the image preview of an upload.
    pub fn set_preview(&mut self, key: u32, url: String) {
        if let Some(u) = self.items.iter_mut().find(|u| u.key == key) {
            u.preview = Some(url);
        }
    }

    /// So many bytes of an upload went.
    pub fn sent(&mut self, key: u32, bytes: u64) {
        if let Some(u) = self.sending(key) {
            u.progress = Progress::Sending(bytes.min(u.size));
        }
    }

    /// An upload ended: stored, or refused and why.
    pub fn finish(&mut self, key: u32, result: Result<FileObject, String>) {
        if let Some(u) = self.sending(key) {
            u.progress = match result {
                Ok(f) => Progress::Done(f),
                Err(why) => Progress::Failed(why),
            };
        }
    }

    /// Takes an upload off the queue.
    pub fn remove(&mut self, key: u32) -> Option<Upload> {
        let i = self.items.iter().position(|u| u.key == key)?;
        Some(self.items.remove(i))
    }

    /// Whether a file is still uploading.
    pub fn busy(&self) -> bool {
        self.items
            .iter()
            .any(|u| matches!(u.progress, Progress::Sending(_)))
    }

    /// The stored files, for the message.
    pub fn ready(&self) -> Vec<FileObject> {
        self.items
            .iter()
            .filter_map(|u| match &u.progress {
                Progress::Done(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a message can go: text or a stored file, and nothing still
    /// uploading.
    pub fn can_send(&self, has_text: bool) -> bool {
        !self.busy()
            && (has_text
                || self
                    .items
                    .iter()
                    .any(|u| matches!(u.progress, Progress::Done(_))))
    }
}

/// How much of an upload went, in percent.
pub fn percent(sent: u64, size: u64) -> u32 {
    if size == 0 {
        return 0;
    }
    (sent.min(size) * 100 / size) as u32
}

/// What `POST /api/files` answered: the stored file, or the server's
/// reason for a person (its `message`; one of ours when the answer has
/// none, as a proxy's would not).
pub fn outcome(status: u16, body: &str, lang: Lang) -> Result<FileObject, String> {
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: Reason,
    }
    #[derive(serde::Deserialize)]
    struct Reason {
        message: String,
    }
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|_| lang.t(K::UploadFailed).to_string());
    }
    if let Ok(r) = serde_json::from_str::<Refusal>(body)
        && !r.error.message.trim().is_empty()
    {
        return Err(r.error.message);
    }
    Err(lang
        .t(match status {
            413 => K::FileTooLarge,
            403 => K::UploadForbidden,
            401 => K::ErrUnauthorized,
            429 => K::ErrRateLimited,
            _ => K::UploadFailed,
        })
        .to_string())
}

/// The page's upload queue and the drop overlay's state; cheap to copy.
#[derive(Clone, Copy)]
pub struct Uploads {
    pub queue: RwSignal<Queue>,
    /// Files are being dragged over the conversation.
    pub dragging: RwSignal<bool>,
    /// Enter was pressed while files were still uploading.
    pub waiting: RwSignal<bool>,
    /// The page's language, for the refusals (read in the browser only).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    lang: RwSignal<Lang>,
}

impl Uploads {
    /// An empty queue; refusals are worded in `lang`. One for the page's
    /// whole life, as the message box's text is: going to another room,
    /// or to the account page and back, keeps the files and their uploads.
    pub fn new(lang: RwSignal<Lang>) -> Self {
        Uploads {
            queue: RwSignal::new(Queue::default()),
            dragging: RwSignal::new(false),
            waiting: RwSignal::new(false),
            lang,
        }
    }

    /// Takes a file off the queue, stopping its upload.
    pub fn remove(self, key: u32) {
        #[cfg(feature = "hydrate")]
        xhr::cancel(key);
        if let Some(u) = self.queue.try_update(|q| q.remove(key)).flatten() {
            forget_preview(u.preview);
        }
        self.waiting.set(false);
    }

    /// Empties the queue (its files went with a message).
    pub fn clear(self) {
        let gone = self
            .queue
            .try_update(|q| std::mem::take(&mut q.items))
            .unwrap_or_default();
        for u in gone {
            #[cfg(feature = "hydrate")]
            xhr::cancel(u.key);
            forget_preview(u.preview);
        }
        self.waiting.set(false);
    }

    /// The files of the attach button's picker.
    pub fn picked(self, input: &leptos::web_sys::HtmlInputElement) {
        #[cfg(feature = "hydrate")]
        {
            if let Some(files) = input.files() {
                self.add_list(&files);
            }
            // The same file can be picked again.
            input.set_value("");
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = input;
    }

    /// A paste into the message box: files (a screenshot) are attached;
    /// text, or files that come with text (a spreadsheet's cells), paste
    /// as usual.
    pub fn paste(self, ev: &leptos::ev::ClipboardEvent) {
        #[cfg(feature = "hydrate")]
        if let Some(data) = ev.clipboard_data()
            && let Some(files) = data.files()
            && files.length() > 0
            && data.get_data("text/plain").unwrap_or_default().is_empty()
        {
            ev.prevent_default();
            self.add_list(&files);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    }

    /// Files dragged into the conversation: the drop overlay shows, if
    /// the message box is there to take them.
    pub fn drag_enter(self, ev: &leptos::ev::DragEvent) {
        #[cfg(feature = "hydrate")]
        {
            let files = ev.data_transfer().is_some_and(|dt| {
                dt.types()
                    .includes(&wasm_bindgen::JsValue::from_str("Files"), 0)
            });
            if files && document().get_element_by_id("message").is_some() {
                ev.prevent_default();
                self.dragging.set(true);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    }

    /// Files dropped on the overlay.
    pub fn drop(self, ev: &leptos::ev::DragEvent) {
        ev.prevent_default();
        self.dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(files) = ev.data_transfer().and_then(|dt| dt.files()) {
            self.add_list(&files);
        }
    }
}

#[cfg(feature = "hydrate")]
impl Uploads {
    fn add_list(self, files: &web_sys::FileList) {
        for i in 0..files.length() {
            if let Some(f) = files.get(i) {
                self.add(&f);
            }
        }
    }

    /// Queues a file and starts its upload.
    fn add(self, file: &web_sys::File) {
        let lang = self.lang.get_untracked();
        // Pasted images may come nameless; the server checks the rest.
        let raw = file.name();
        let name = crate::protocol::clean_file_name(&raw)
            .unwrap_or("file")
            .to_string();
        let full = lang.f(K::TooManyFiles, &[("n", &MAX_ATTACHMENTS.to_string())]);
        let size = file.size() as u64;
        let Some(key) = self
            .queue
            .try_update(|q| q.add(name.clone(), size, full))
            .flatten()
        else {
            return;
        };
        if file.type_().starts_with("image/")
            && let Ok(url) = web_sys::Url::create_object_url_with_blob(file)
        {
            self.queue.update(|q| q.set_preview(key, url));
        }
        if xhr::start(self, key, file, &name).is_err() {
            let why = lang.t(K::UploadFailed).to_string();
            self.queue.update(|q| q.finish(key, Err(why)));
        }
    }
}

/// Lets the browser free an image preview.
fn forget_preview(url: Option<String>) {
    #[cfg(feature = "hydrate")]
    if let Some(url) = url {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = url;
}

/// The requests: one XMLHttpRequest per file, its progress handler kept
/// alive while it runs.
#[cfg(feature = "hydrate")]
mod xhr {
    use super::{Uploads, outcome};
    use crate::protocol::{UPLOAD_PATH, encode_path_segment};
    use leptos::prelude::{GetUntracked, Update};
    use std::cell::RefCell;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::{ProgressEvent, XmlHttpRequest};

    type OnProgress = Closure<dyn FnMut(ProgressEvent)>;

    thread_local! {
        /// The requests under way, by upload key.
        static LIVE: RefCell<Vec<(u32, XmlHttpRequest, OnProgress)>> =
            const { RefCell::new(Vec::new()) };
    }

    fn take(key: u32) -> Option<(u32, XmlHttpRequest, OnProgress)> {
        LIVE.with(|l| {
            let mut l = l.borrow_mut();
            let i = l.iter().position(|(k, ..)| *k == key)?;
            Some(l.remove(i))
        })
    }

    /// Sends a file as the raw body of `POST /api/files?name=…` (same
    /// origin: the session cookie goes with it).
    pub fn start(up: Uploads, key: u32, file: &web_sys::File, name: &str) -> Result<(), JsValue> {
        let req = XmlHttpRequest::new()?;
        req.open(
            "POST",
            &format!("{UPLOAD_PATH}?name={}", encode_path_segment(name)),
        )?;
        let progress = OnProgress::new(move |e: ProgressEvent| {
            up.queue.try_update(|q| q.sent(key, e.loaded() as u64));
        });
        req.upload()?
            .set_onprogress(Some(progress.as_ref().unchecked_ref()));
        let done = req.clone();
        // Once, whatever the ending: stored, refused, broken or aborted.
        let end = Closure::once_into_js(move || {
            // Aborted: `cancel` took it off the list already, and the chip went.
            let Some(_live) = take(key) else { return };
            let status = done.status().unwrap_or(0);
            let body = done.response_text().ok().flatten().unwrap_or_default();
            let lang = up.lang.try_get_untracked().unwrap_or_default();
            up.queue
                .try_update(|q| q.finish(key, outcome(status, &body, lang)));
        });
        req.set_onloadend(Some(end.unchecked_ref()));
        LIVE.with(|l| l.borrow_mut().push((key, req.clone(), progress)));
        req.send_with_opt_blob(Some(file)).inspect_err(|_| {
            take(key);
        })
    }

    /// Stops an upload; its `loadend` then finds nothing to report.
    pub fn cancel(key: u32) {
        // Taken first: `abort` runs the request's handlers at once, and the
        // progress handler stays alive (here) until it returns.
        if let Some((_, req, _progress)) = take(key) {
            let _ = req.abort();
        }
    }
}

/// The files of the next message, above the message box.
#[component]
pub fn UploadChips() -> impl IntoView {
    let up = expect_context::<Uploads>();
    let layout = expect_context::<Layout>();
    let keys = move || {
        up.queue
            .with(|q| q.items.iter().map(|u| u.key).collect::<Vec<_>>())
    };
    view! {
        <Show when=move || up.queue.with(|q| !q.items.is_empty())>
            <ul class="uploads" aria-label=layout.tr(K::FilesToSend)>
                <For each=keys key=|k| *k children=move |key| view! { <Chip key/> }/>
            </ul>
        </Show>
        <Show when=move || up.waiting.get() && up.queue.with(Queue::busy)>
            <p class="hint uploads-hint" role="status">{layout.tr(K::UploadsPending)}</p>
        </Show>
    }
}

/// One file of the queue: its preview or icon, name, size or refusal,
/// progress, and the button that takes it off (stopping its upload).
#[component]
fn Chip(key: u32) -> impl IntoView {
    let up = expect_context::<Uploads>();
    let layout = expect_context::<Layout>();
    let Some(u) = up.queue.with_untracked(|q| q.get(key).cloned()) else {
        return ().into_any();
    };
    let progress = Memo::new(move |_| up.queue.with(|q| q.get(key).map(|u| u.progress.clone())));
    let size = u.size;
    let sent = move || match progress.get() {
        Some(Progress::Sending(n)) => Some(percent(n, size)),
        _ => None,
    };
    let refusal = move || match progress.get() {
        Some(Progress::Failed(why)) => Some(why),
        _ => None,
    };
    let name = StoredValue::new(u.name.clone());
    let label = move |k: K| {
        let lang = layout.lang.get();
        name.with_value(|n| lang.f(k, &[("name", n)]))
    };
    let remove_label = move || {
        label(if sent().is_some() {
            K::CancelUpload
        } else {
            K::RemoveFile
        })
    };
    let icon = match u.preview {
        Some(src) => view! { <img class="upload-thumb" src=src alt=""/> }.into_any(),
        None => view! { <span class="file-icon" aria-hidden="true">{kind("", &u.name).1}</span> }
            .into_any(),
    };
    view! {
        <li class="upload" class:failed=move || refusal().is_some()>
            {icon}
            <div class="upload-info">
                <span class="upload-name" title=u.name.clone()>{u.name.clone()}</span>
                {move || match refusal() {
                    Some(why) => view! { <span class="upload-error" role="alert">{why}</span> }.into_any(),
                    None => view! { <span class="upload-size">{human_size(size, layout.lang.get())}</span> }.into_any(),
                }}
                {move || sent().map(|pct| view! {
                    <span
                        class="upload-bar"
                        role="progressbar"
                        aria-label=label(K::UploadingName)
                        aria-valuemin="0"
                        aria-valuemax="100"
                        aria-valuenow=pct.to_string()
                    >
                        <span style=format!("width:{pct}%")></span>
                    </span>
                })}
            </div>
            <button
                type="button"
                class="upload-remove"
                aria-label=remove_label
                title=remove_label
                on:click=move |_| up.remove(key)
            >
                "×"
            </button>
        </li>
    }
    .into_any()
}

/// "Drop files to share", over the conversation while files are dragged
/// there; a drop attaches them.
#[component]
pub fn DropOverlay() -> impl IntoView {
    let up = expect_context::<Uploads>();
    let layout = expect_context::<Layout>();
    view! {
        <Show when=move || up.dragging.get()>
            <div
                class="drop-overlay"
                on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                on:dragleave=move |_| up.dragging.set(false)
                on:drop=move |ev| up.drop(&ev)
            >
                <p>{layout.tr(K::DropFiles)}</p>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str) -> FileObject {
        FileObject {
            id: id.into(),
            name: format!("{id}.pdf"),
            size: 100,
            mime: "application/pdf".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_message_goes_with_text_or_files_once_nothing_uploads() {
        let mut q = Queue::default();
        assert!(q.can_send(true) && !q.can_send(false));
        let a = q.add("a.pdf".into(), 100, "full".into()).unwrap();
        let b = q.add("b.pdf".into(), 100, "full".into()).unwrap();
        q.sent(a, 50);
        assert_eq!(q.get(a).unwrap().progress, Progress::Sending(50));
        assert!(q.busy() && !q.can_send(true));
        q.finish(a, Ok(stored("a")));
        assert!(!q.can_send(true), "b still uploads");
        q.finish(b, Err("this file is over the 25 MB limit".into()));
        assert!(q.can_send(false));
        assert_eq!(q.ready(), vec![stored("a")]);
        // Late progress or a second ending change nothing.
        q.sent(b, 10);
        q.finish(a, Err("late".into()));
        assert_eq!(q.get(a).unwrap().progress, Progress::Done(stored("a")));
        assert!(matches!(q.get(b).unwrap().progress, Progress::Failed(_)));
        assert_eq!(q.remove(a).map(|u| u.key), Some(a));
        assert!(!q.can_send(false) && q.ready().is_empty());
    }

    #[test]
    fn a_message_carries_at_most_ten_files() {
        let mut q = Queue::default();
        for i in 0..MAX_ATTACHMENTS {
            assert!(q.add(format!("{i}"), 1, "full".into()).is_some());
        }
        assert_eq!(q.add("11".into(), 1, "full".into()), None);
        assert_eq!(
            q.items.last().map(|u| &u.progress),
            Some(&Progress::Failed("full".into()))
        );
        // A refused file takes no place: another can come once one goes.
        q.remove(0);
        assert!(q.add("12".into(), 1, "full".into()).is_some());
    }

    #[test]
    fn answers_become_files_or_reasons() {
        let ok = r#"{"id":"ab","name":"a.png","size":3,"type":"image/png","width":2,"height":1}"#;
        let f = outcome(201, ok, Lang::En).unwrap();
        assert_eq!(
            (f.width, f.height, f.mime.as_str()),
            (Some(2), Some(1), "image/png")
        );
        let no = r#"{"error":{"code":"too_large","message":"this file is over the 25 MB limit"}}"#;
        assert_eq!(
            outcome(413, no, Lang::En),
            Err("this file is over the 25 MB limit".into())
        );
        assert_eq!(
            outcome(413, "<html>", Lang::En),
            Err(Lang::En.t(K::FileTooLarge).into())
        );
        assert_eq!(
            outcome(0, "", Lang::En),
            Err(Lang::En.t(K::UploadFailed).into())
        );
        assert_eq!(
            outcome(201, "{}", Lang::En),
            Err(Lang::En.t(K::UploadFailed).into())
        );
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(5, 0), 0);
    }
}
