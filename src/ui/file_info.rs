//! What a shared file is, for a person: its size in words, the kind of
//! icon it gets, the box its thumbnail takes before it loads, and a
//! message's files as a line of text where only text fits. Plain functions
//! of the file's metadata: no view, no browser.

use super::i18n::{K, Lang};
use crate::protocol::FileObject;
use std::borrow::Cow;

/// The largest box (CSS px) a thumbnail takes in the message list.
pub const THUMB_BOX: (u32, u32) = (360, 270);

/// A size as a person reads it: `512 B`, `1.2 MB`, `34 MB` (units of
/// 1024, as the server's limits are given), in the page's language.
pub fn human_size(bytes: u64, lang: Lang) -> String {
    const UNITS: [K; 4] = [K::SizeKb, K::SizeMb, K::SizeGb, K::SizeTb];
    if bytes < 1024 {
        return lang.f(K::SizeB, &[("n", &bytes.to_string())]);
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up while the rounded number would read 1024 or more.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let n = if value < 9.95 {
        let s = format!("{value:.1}");
        match s.strip_suffix(".0") {
            Some(whole) => whole.to_string(),
            None => s.replace('.', lang.t(K::DecimalPoint)),
        }
    } else {
        format!("{value:.0}")
    };
    lang.f(UNITS[unit], &[("n", &n)])
}

/// The size a thumbnail is shown at: the image scaled down (never up) to
/// fit `max`, keeping its aspect ratio; at least 1×1.
pub fn fit(width: u32, height: u32, max: (u32, u32)) -> (u32, u32) {
    if width == 0 || height == 0 {
        return max;
    }
    let scale = (max.0 as f64 / width as f64)
        .min(max.1 as f64 / height as f64)
        .min(1.0);
    let w = (width as f64 * scale).round().max(1.0) as u32;
    let h = (height as f64 * scale).round().max(1.0) as u32;
    (w, h)
}

/// The kind of icon a file's card shows (a CSS class suffix), and the
/// short label written on it (the extension, upper-cased).
pub fn kind(mime: &str, name: &str) -> (&'static str, String) {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| (1..=4).contains(&e.len()) && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_ascii_uppercase);
    let (class, fallback) = match mime {
        "application/pdf" => ("pdf", "PDF"),
        "application/zip"
        | "application/gzip"
        | "application/x-tar"
        | "application/x-7z-compressed"
        | "application/vnd.rar"
        | "application/x-rar-compressed"
        | "application/x-bzip2"
        | "application/x-xz"
        | "application/zstd" => ("archive", "ZIP"),
        "application/json" | "application/xml" => ("text", "TXT"),
        m if m.starts_with("text/") => ("text", "TXT"),
        m if m.starts_with("image/") => ("image", "IMG"),
        m if m.starts_with("audio/") => ("audio", "AUD"),
        m if m.starts_with("video/") => ("video", "VID"),
        _ => ("file", "FILE"),
    };
    (class, ext.unwrap_or_else(|| fallback.to_string()))
}

/// A message's body, or, when it has none, its files' names: what a
/// notification, a quote or a screen reader says of it.
pub fn body_or_files<'a>(body: &'a str, files: &[FileObject]) -> Cow<'a, str> {
    if !body.trim().is_empty() || files.is_empty() {
        return Cow::Borrowed(body);
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    Cow::Owned(format!("📎 {}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        let en = |b| human_size(b, Lang::En);
        assert_eq!(en(0), "0\u{a0}B");
        assert_eq!(en(1023), "1023\u{a0}B");
        assert_eq!(en(1024), "1\u{a0}KB");
        assert_eq!(en(1229), "1.2\u{a0}KB");
        assert_eq!(en(1_258_291), "1.2\u{a0}MB");
        assert_eq!(en(25 * 1024 * 1024), "25\u{a0}MB");
        assert_eq!(en(1024 * 1024 - 1), "1\u{a0}MB");
        assert_eq!(en(3 * 1024 * 1024 * 1024), "3\u{a0}GB");
        assert_eq!(human_size(1_258_291, Lang::Fr), "1,2\u{a0}Mo");
        assert_eq!(human_size(10, Lang::Fr), "10\u{a0}o");
    }

    #[test]
    fn thumbnails_fit_their_box_without_growing() {
        assert_eq!(fit(640, 480, THUMB_BOX), (360, 270));
        assert_eq!(fit(1000, 100, THUMB_BOX), (360, 36));
        assert_eq!(fit(100, 1000, THUMB_BOX), (27, 270));
        assert_eq!(fit(50, 40, THUMB_BOX), (50, 40));
        assert_eq!(fit(10_000, 1, THUMB_BOX), (360, 1));
        assert_eq!(fit(0, 10, THUMB_BOX), THUMB_BOX);
    }

    #[test]
    fn kinds_come_from_the_type_and_labels_from_the_name() {
        assert_eq!(kind("application/pdf", "a.pdf"), ("pdf", "PDF".into()));
        assert_eq!(
            kind("application/zip", "b.tar.gz"),
            ("archive", "GZ".into())
        );
        assert_eq!(kind("text/plain", "notes"), ("text", "TXT".into()));
        assert_eq!(
            kind("application/octet-stream", "x.verylong"),
            ("file", "FILE".into())
        );
        assert_eq!(
            kind("application/octet-stream", "x.bin"),
            ("file", "BIN".into())
        );
    }

    #[test]
    fn a_file_without_caption_is_told_by_its_names() {
        let f = FileObject {
            name: "a.png".into(),
            ..Default::default()
        };
        assert_eq!(body_or_files("hi", std::slice::from_ref(&f)), "hi");
        assert_eq!(body_or_files("", &[f.clone(), f]), "📎 a.png, a.png");
        assert_eq!(body_or_files("", &[]), "");
    }
}
