//! Files (PROTOCOL.md 1.1, "Files"): uploads, images written again,
//! sending, serving with the right headers, access that follows the room,
//! bad input of every kind, the sweep and the backup. On SQLite and
//! PostgreSQL, each with the file store in a directory and, when
//! `CAUSERIE_TEST_S3` names an S3 server (scripts/test.sh starts
//! `s3s-fs`), in S3.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// Where a test's server keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blobs {
    Dir,
    S3,
}

/// The file stores to test on: a directory always, S3 when configured.
fn stores() -> Vec<Blobs> {
    let mut out = vec![Blobs::Dir];
    if std::env::var("CAUSERIE_TEST_S3").is_ok_and(|s| !s.trim().is_empty()) {
        out.push(Blobs::S3);
    } else {
        eprintln!("files: S3 skipped (set CAUSERIE_TEST_S3=http://HOST:PORT)");
    }
    out
}

/// A server with open registration, the bot, and `blobs` as its file store.
async fn server(blobs: Blobs, opts: ServerOpts) -> Server {
    let mut opts = opts
        .env("CAUSERIE_REGISTRATION", "open")
        .env("CAUSERIE_BOT_TOKENS", BOT_TOKENS);
    if blobs == Blobs::Dir && current_backend() == Backend::Postgres {
        // Where SQLite's default puts them, so that the checks look in one place.
        let dir = fresh_dir();
        let files = dir.path().join("chat-files");
        opts = opts.dir(dir).env("CAUSERIE_FILES", files.display());
    }
    if blobs == Blobs::S3 {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let endpoint = std::env::var("CAUSERIE_TEST_S3").unwrap_or_default();
        let bucket = std::env::var("CAUSERIE_TEST_S3_BUCKET").unwrap_or("causerie-test".into());
        let prefix = format!("t{}-{}-{n}", std::process::id(), rand_suffix());
        opts = opts
            .env("CAUSERIE_FILES", format!("s3://{bucket}/{prefix}"))
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env(
                "AWS_ACCESS_KEY_ID",
                std::env::var("CAUSERIE_TEST_S3_KEY").unwrap_or("causerie".into()),
            )
            .env(
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("CAUSERIE_TEST_S3_SECRET").unwrap_or("causerie-secret".into()),
            )
            .env("AWS_REGION", "us-east-1");
    }
    Server::start_with(opts).await
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(0)
}

/// An account: its browser session and an API token.
struct Member<'a> {
    visitor: Visitor<'a>,
    token: String,
}

async fn member<'a>(s: &'a Server, name: &str) -> Member<'a> {
    let mut visitor = Visitor::new(s);
    register(&mut visitor, name, PASSWORD).await;
    let csrf = visitor.csrf().await;
    let (status, body) = visitor
        .call("create_token", &[("label", "files"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "create_token for {name}: {body}");
    let made: Value = serde_json::from_str(&body).expect("token JSON");
    let token = made["token"].as_str().expect("token").to_string();
    Member { visitor, token }
}

/// `POST /api/files?name=...` with `token`: the status and the JSON answer.
async fn upload(
    s: &Server,
    token: Option<&str>,
    name: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let path = match name {
        Some(n) => format!("/api/files?name={}", url_encode(n)),
        None => "/api/files".to_string(),
    };
    let mut req = s.http().post(s.url(&path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET path` with a Bearer token, a cookie, or nothing.
async fn fetch(
    s: &Server,
    path: &str,
    token: Option<&str>,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut req = s.http().get(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.expect("GET file")
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 251) as u8, (y % 241) as u8, 40, 255])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 90])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("jpeg");
    out
}

/// A JPEG with an EXIF block holding a GPS position and orientation 6
/// (turned a quarter), as a phone's photo has.
fn phone_photo(w: u32, h: u32) -> Vec<u8> {
    let plain = jpeg(w, h);
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
    tiff.extend_from_slice(b"GPSLatitude 48.8584N GPSLongitude 2.2945E");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A 1 × 1 PNG whose header claims `w` × `h` pixels (its checksum
/// right), as a decompression bomb starts.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(1, 1);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    // The IHDR chunk's CRC covers its type and data (bytes 12..29).
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex_of(&sha2::Sha256::digest(bytes))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The blobs under a server's files directory (not the spool), and what
/// is still in the spool.
fn stored_blobs(s: &Server) -> (usize, usize) {
    let dir = s.dir.path().join("chat-files");
    let mut blobs = 0;
    let mut spool = 0;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (0, 0);
    };
    for e in entries.flatten() {
        let in_spool = e.file_name() == ".uploading";
        for _ in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if in_spool {
                spool += 1;
            } else {
                blobs += 1;
            }
        }
    }
    (blobs, spool)
}

/// Sends a message with files and returns the answer to it (ack or error).
async fn send_files(ws: &mut Client, room: &str, body: &str, ids: &[&str], nonce: &str) -> Value {
    ws.send_json(json!({"type":"send","room":room,"body":body,"attachments":ids,"nonce":nonce}))
        .await;
    ws.recv_where(&format!("ack/error for {nonce}"), |v| {
        matches!(typ(v), "ack" | "error") && v["nonce"] == nonce
    })
    .await
}

both_backends! {
    async fn images_and_documents_go_round_trip() {
        for blobs in stores() {
            let s = server(blobs, ServerOpts::new()).await;
            let alice = member(&s, "alice").await;
            let bob = member(&s, "bob").await;

            // A phone's photo: written again upright, without its EXIF.
            let photo = phone_photo(300, 200);
            let (status, file) = upload(&s, Some(&alice.token), Some("Holiday 🏖.jpg"), photo).await;
            assert_eq!(status, 201, "{blobs:?}: {file}");
            assert_eq!(file["type"], "image/jpeg");
            assert_eq!(file["name"], "Holiday 🏖.jpg");
            assert_eq!((file["width"].as_u64(), file["height"].as_u64()), (Some(200), Some(300)));
            let id = file["id"].as_str().unwrap().to_string();
            assert_eq!(id.len(), 64);
            let url = format!("/files/{id}/photo.jpg");

            // Before it is sent: its uploader may read it, nobody else.
            assert_eq!(fetch(&s, &url, Some(&alice.token), None).await.status(), 200);
            assert_eq!(fetch(&s, &url, Some(&bob.token), None).await.status(), 404);
            assert_eq!(fetch(&s, &url, None, None).await.status(), 404);

            let mut a = alice.visitor.ws().await;
            a.send_json(json!({"type":"hello"})).await;
            a.expect_type("welcome").await;
            a.join("general").await;
            let mut b = bob.visitor.ws().await;
            b.send_json(json!({"type":"hello"})).await;
            b.expect_type("welcome").await;
            b.join("general").await;

            // A file needs no caption.
            let ack = send_files(&mut a, "general", "", &[&id], "n1").await;
            assert_eq!(typ(&ack), "ack", "{ack}");
            let m = b.recv_where("the photo", |v| typ(v) == "message" && v["nonce"] == "n1").await;
            assert_eq!(m["body"], "");
            assert_eq!(m["attachments"][0]["id"], id.as_str());
            assert_eq!(m["attachments"][0]["name"], "Holiday 🏖.jpg");
            assert_eq!(m["attachments"][0]["width"], 200);

            // Now anyone who may read the room may read it: bob, a visitor.
            let res = fetch(&s, &url, None, Some(&bob.visitor.cookies())).await;
            assert_eq!(res.status(), 200);
            let h = res.headers().clone();
            assert_eq!(h["content-type"], "image/jpeg");
            assert!(h["content-disposition"].to_str().unwrap().starts_with("inline;"), "{h:?}");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert!(h["content-security-policy"].to_str().unwrap().starts_with("sandbox"), "{h:?}");
            assert!(h["cache-control"].to_str().unwrap().contains("immutable"), "{h:?}");
            let etag = h["etag"].to_str().unwrap().to_string();
            let bytes = res.bytes().await.unwrap();
            assert_eq!(sha256_hex(&bytes), id, "the id is the digest of the bytes served");
            assert!(!contains(&bytes, b"GPSLatitude"), "the GPS position is gone");
            assert!(!contains(&bytes, b"Exif"), "the EXIF block is gone");
            let shown = image::load_from_memory(&bytes).unwrap();
            assert_eq!((shown.width(), shown.height()), (200, 300));
            assert_eq!(fetch(&s, &url, None, None).await.status(), 200);
            // Unchanged since: 304.
            let again = s.http().get(s.url(&url)).header("if-none-match", &etag).send().await.unwrap();
            assert_eq!(again.status(), 304);

            // Its thumbnail.
            let res = fetch(&s, &format!("/files/{id}/thumb"), None, None).await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "image/jpeg");
            let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
            assert_eq!((thumb.width(), thumb.height()), (200, 300), "small images keep their size");
            let (_, big) = upload(&s, Some(&alice.token), Some("wide.png"), png(1600, 400)).await;
            let big_id = big["id"].as_str().unwrap();
            let res = fetch(&s, &format!("/files/{big_id}/thumb"), Some(&alice.token), None).await;
            let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
            assert_eq!((thumb.width(), thumb.height()), (480, 120));

            // A PDF is a download, typed from its content.
            let pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
            let (status, doc) = upload(&s, Some(&alice.token), Some("report.bin"), pdf.clone()).await;
            assert_eq!(status, 201, "{doc}");
            assert_eq!(doc["type"], "application/pdf");
            assert!(doc.get("width").is_none());
            let doc_id = doc["id"].as_str().unwrap();
            assert_eq!(doc_id, sha256_hex(&pdf));
            let ack = send_files(&mut a, "general", "the report", &[doc_id, &id], "n2").await;
            assert_eq!(typ(&ack), "ack", "{ack}");
            let res = fetch(&s, &format!("/files/{doc_id}/report.pdf"), Some(&bob.token), None).await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "application/pdf");
            assert_eq!(
                res.headers()["content-disposition"],
                "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
            );
            assert_eq!(res.bytes().await.unwrap().as_ref(), pdf.as_slice());
            // It has no thumbnail: `thumb` is then its own name.
            assert_eq!(fetch(&s, &format!("/files/{doc_id}/thumb"), Some(&bob.token), None).await.status(), 200);

            // History, over the API, carries the files.
            let page = s.api_messages("general", "").await;
            let last = page["messages"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["body"], "the report");
            let names: Vec<&str> = last["attachments"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["report.bin", "Holiday 🏖.jpg"]);

            // A large file (parts, on S3) comes back whole.
            let large: Vec<u8> = (0..20_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
            let (status, big) = upload(&s, Some(&alice.token), Some("data.bin"), large.clone()).await;
            assert_eq!(status, 201, "{big}");
            assert_eq!(big["type"], "application/octet-stream");
            assert_eq!(big["size"], 20_000_000);
            let res = fetch(&s, &format!("/files/{}/data.bin", big["id"].as_str().unwrap()), Some(&alice.token), None).await;
            assert_eq!(sha256_hex(&res.bytes().await.unwrap()), sha256_hex(&large));

            // The same bytes again are the same file, under the new name.
            let (status, again) = upload(&s, Some(&bob.token), Some("mine.pdf"), pdf.clone()).await;
            assert_eq!(status, 201);
            assert_eq!(again["id"], doc_id);
            assert_eq!(again["name"], "mine.pdf");
        }
    }

    async fn a_private_rooms_files_stay_in_it() {
        for blobs in stores() {
            let s = server(blobs, ServerOpts::new()).await;
            let alice = member(&s, "alice").await;
            let carol = member(&s, "carol").await;
            let bob = member(&s, "bob").await;
            let mut a = alice.visitor.ws().await;
            a.send_json(json!({"type":"hello"})).await;
            a.expect_type("welcome").await;
            a.send_json(json!({"type":"create","room":"~secret","members":["carol"]})).await;
            a.recv_where("joined ~secret", |v| typ(v) == "joined" && v["room"] == "~secret").await;
            let (_, file) = upload(&s, Some(&alice.token), Some("plan.txt"), b"the plan".to_vec()).await;
            let id = file["id"].as_str().unwrap().to_string();
            assert_eq!(file["type"], "text/plain; charset=utf-8");
            let ack = send_files(&mut a, "~secret", "", &[&id], "p1").await;
            assert_eq!(typ(&ack), "ack", "{ack}");
            let url = format!("/files/{id}/plan.txt");
            assert_eq!(fetch(&s, &url, Some(&carol.token), None).await.status(), 200);
            assert_eq!(fetch(&s, &url, None, Some(&carol.visitor.cookies())).await.status(), 200);
            // Knowing the id is not enough.
            for (who, token, cookie) in [
                ("bob", Some(bob.token.as_str()), None),
                ("bob's browser", None, Some(bob.visitor.cookies())),
                ("a visitor", None, None),
                ("the bot", Some(BOT_TOKEN), None),
            ] {
                let res = fetch(&s, &url, token, cookie.as_deref()).await;
                assert_eq!(res.status(), 404, "{who}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "not_found", "{who}");
                assert_eq!(fetch(&s, &format!("/files/{id}/thumb"), token, cookie.as_deref()).await.status(), 404);
            }
            // Nor can bob send it elsewhere, by its id.
            let mut b = bob.visitor.ws().await;
            b.send_json(json!({"type":"hello"})).await;
            b.expect_type("welcome").await;
            b.join("general").await;
            let refused = send_files(&mut b, "general", "look", &[&id], "b1").await;
            assert_eq!(refused["code"], "not_found", "{refused}");
            // Carol, taken out of the room, loses it too.
            a.send_json(json!({"type":"remove","room":"~secret","user":"carol"})).await;
            a.recv_where("carol removed", |v| typ(v) == "member" && v["user"] == "carol").await;
            assert_eq!(fetch(&s, &url, Some(&carol.token), None).await.status(), 404);
            assert_eq!(fetch(&s, &url, Some(&alice.token), None).await.status(), 200);
        }
    }

    async fn bad_uploads_get_clear_errors_and_leave_nothing() {
        for blobs in stores() {
            let s = server(
                blobs,
                ServerOpts::new()
                    .env("CAUSERIE_MAX_FILE_BYTES", 1_000_000)
                    .env("CAUSERIE_MAX_IMAGE_PIXELS", 4_000_000),
            )
            .await;
            let alice = member(&s, "alice").await;
            let t = Some(alice.token.as_str());
            let check = |what: &str, (status, body): (u16, Value), want: u16, code: &str| {
                assert_eq!(status, want, "{what}: {body}");
                assert_eq!(body["error"]["code"], code, "{what}: {body}");
                assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: {body}");
            };
            check("no credentials", upload(&s, None, Some("a.txt"), b"x".to_vec()).await, 401, "unauthorized");
            check("no name", upload(&s, t, None, b"x".to_vec()).await, 400, "bad_name");
            check("empty name", upload(&s, t, Some("  "), b"x".to_vec()).await, 400, "bad_name");
            check("a path", upload(&s, t, Some("../../etc/passwd"), b"x".to_vec()).await, 400, "bad_name");
            check("a control character", upload(&s, t, Some("a\u{7}b.txt"), b"x".to_vec()).await, 400, "bad_name");
            check("dot dot", upload(&s, t, Some(".."), b"x".to_vec()).await, 400, "bad_name");
            check("empty", upload(&s, t, Some("a.txt"), Vec::new()).await, 400, "bad_request");

            // A PNG that is not one, and a cut one.
            let mut liar = b"\x89PNG\r\n\x1a\n".to_vec();
            liar.extend_from_slice(&[0x42; 200]);
            check("a false PNG", upload(&s, t, Some("x.png"), liar).await, 400, "bad_request");
            let cut = jpeg(64, 64);
            check("a cut JPEG", upload(&s, t, Some("x.jpg"), cut[..cut.len() / 2].to_vec()).await, 400, "bad_request");
            // 50,000 × 50,000 pixels in a few bytes.
            let (status, body) = upload(&s, t, Some("bomb.png"), png_claiming(50_000, 50_000)).await;
            assert_eq!(status, 413, "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("50000 × 50000"), "{body}");
            // Over the pixel limit, for real.
            let (status, body) = upload(&s, t, Some("huge.png"), png(2100, 2000)).await;
            assert_eq!(status, 413, "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("pixels"), "{body}");

            // A body that ends before its Content-Length, and one that
            // passes the limit without announcing it: nothing is kept.
            let short = raw_upload(&s, &alice.token, Some(5000), &[b'a'; 1000], true).await;
            assert!(
                short.as_deref().is_some_and(|r| r.starts_with("HTTP/1.1 400") && r.contains("did not arrive whole")),
                "{short:?}"
            );
            let refused = raw_upload(&s, &alice.token, Some(5_000_000), &[b'a'; 1000], false).await;
            assert!(refused.as_deref().is_some_and(|r| r.starts_with("HTTP/1.1 413")), "refused before the body: {refused:?}");
            let refused = raw_upload(&s, &alice.token, None, &vec![b'a'; 1_000_500], false).await;
            assert!(refused.as_deref().is_some_and(|r| r.starts_with("HTTP/1.1 413")), "refused at the limit: {refused:?}");

            // Polyglots: a PNG with a page after it is written again without
            // it; markup named as an image is text, and a download.
            let mut poly = png(20, 20);
            poly.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
            let (status, file) = upload(&s, t, Some("cat.png"), poly).await;
            assert_eq!(status, 201, "{file}");
            let res = fetch(&s, &format!("/files/{}/cat.png", file["id"].as_str().unwrap()), t, None).await;
            assert!(!contains(&res.bytes().await.unwrap(), b"<script>"));
            let (status, file) = upload(&s, t, Some("evil.svg"), b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec()).await;
            assert_eq!(status, 201, "{file}");
            assert_eq!(file["type"], "text/plain; charset=utf-8");
            let res = fetch(&s, &format!("/files/{}/evil.svg", file["id"].as_str().unwrap()), t, None).await;
            assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
            assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");

            // Files that do not exist, and ids that are not ids.
            for path in ["/files/nope/x", &format!("/files/{}/x", "0".repeat(64)), "/files/..%2F..%2Fchat.db/x"] {
                assert_eq!(fetch(&s, path, t, None).await.status(), 404, "{path}");
            }

            if blobs == Blobs::Dir {
                // What was stored: the polyglot PNG (and its thumbnail) and the SVG.
                let (stored, spool) = stored_blobs(&s);
                assert_eq!((stored, spool), (3, 0), "nothing half-stored");
            }
        }
    }

    async fn uploads_have_a_rate_and_a_total() {
        let s = server(
            Blobs::Dir,
            ServerOpts::new()
                .env("CAUSERIE_UPLOADS_PER_MIN", 3)
                .env("CAUSERIE_UPLOAD_QUOTA_BYTES", 30_000),
        )
        .await;
        let alice = member(&s, "alice").await;
        let bob = member(&s, "bob").await;
        let (status, _) = upload(&s, Some(&alice.token), Some("a"), vec![1; 20_000]).await;
        assert_eq!(status, 201);
        let (status, body) = upload(&s, Some(&alice.token), Some("b"), vec![2; 20_000]).await;
        assert_eq!(status, 413, "over the total: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("29.3 KiB"), "{body}");
        let (status, _) = upload(&s, Some(&alice.token), Some("c"), vec![3; 100]).await;
        assert_eq!(status, 201);
        let (status, body) = upload(&s, Some(&alice.token), Some("d"), vec![4; 100]).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited");
        // Each account has its own.
        let (status, _) = upload(&s, Some(&bob.token), Some("e"), vec![5; 100]).await;
        assert_eq!(status, 201);
    }

    async fn sends_with_files_are_checked_and_exactly_once() {
        let s = server(Blobs::Dir, ServerOpts::new()).await;
        let alice = member(&s, "alice").await;
        let (_, file) = upload(&s, Some(&alice.token), Some("notes.txt"), b"notes".to_vec()).await;
        let id = file["id"].as_str().unwrap().to_string();
        let mut a = alice.visitor.ws().await;
        a.send_json(json!({"type":"hello"})).await;
        a.expect_type("welcome").await;
        a.join("general").await;
        let unknown = "ab".repeat(32);
        let refused = send_files(&mut a, "general", "x", &[&unknown], "u1").await;
        assert_eq!(refused["code"], "not_found", "{refused}");
        let refused = send_files(&mut a, "general", "x", &["../../x"], "u2").await;
        assert_eq!(refused["code"], "not_found", "{refused}");
        let many: Vec<&str> = std::iter::repeat_n(id.as_str(), 11).collect();
        let refused = send_files(&mut a, "general", "x", &many, "u3").await;
        assert_eq!(refused["code"], "bad_request", "{refused}");
        // No files and no text: still refused.
        let refused = send_files(&mut a, "general", " ", &[], "u4").await;
        assert_eq!(refused["code"], "bad_request", "{refused}");
        // Sent, then sent again with the same nonce: one message, one answer.
        let first = send_files(&mut a, "general", "notes", &[&id], "once").await;
        assert_eq!(typ(&first), "ack", "{first}");
        let again = send_files(&mut a, "general", "notes", &[&id], "once").await;
        assert_eq!(again["id"], first["id"], "{again}");
        // The file goes on to another message of the same room.
        let ack = send_files(&mut a, "general", "again", &[&id, &id], "twice").await;
        assert_eq!(typ(&ack), "ack", "{ack}");
        // A message with files may lose its caption; one without may not.
        a.send_json(json!({"type":"edit","room":"general","id":first["id"],"body":"  "})).await;
        let changed = a.recv_where("the edit", |v| typ(v) == "changed").await;
        assert_eq!(changed["message"]["body"], "", "{changed}");
        assert_eq!(changed["message"]["attachments"][0]["id"], id.as_str());
        let plain = a.send_msg("general", "words only", "w").await;
        a.send_json(json!({"type":"edit","room":"general","id":plain["id"],"body":""})).await;
        let refused = a.recv_where("the refusal", |v| typ(v) == "error").await;
        assert_eq!(refused["code"], "bad_request", "{refused}");
        let page = s.api_messages("general", "").await;
        let msgs: Vec<&Value> = page["messages"].as_array().unwrap().iter().filter(|m| m["body"] != "words only").collect();
        assert_eq!(msgs.len(), 2, "{page}");
        assert_eq!(msgs[1]["attachments"].as_array().unwrap().len(), 1, "a file once per message");

        // A bot posts a file through the HTTP API with its token.
        let (status, log) = upload(&s, Some(BOT_TOKEN), Some("build.log"), b"error: tests failed\n".to_vec()).await;
        assert_eq!(status, 201, "{log}");
        let (status, posted) = s
            .api_post("general", Some(BOT_TOKEN), &json!({"body":"the build log","attachments":[log["id"]]}))
            .await;
        assert_eq!(status, 201, "{posted}");
        assert_eq!(posted["attachments"][0]["name"], "build.log");
        assert_eq!(posted["attachments"][0]["type"], "text/plain; charset=utf-8");
    }

    async fn unsent_and_deleted_files_are_swept() {
        for blobs in stores() {
            let s = server(blobs, ServerOpts::new().env("CAUSERIE_FILE_SWEEP", "1s")).await;
            let alice = member(&s, "alice").await;
            let t = Some(alice.token.as_str());
            let (_, kept) = upload(&s, t, Some("kept.txt"), b"kept".to_vec()).await;
            let (_, unsent) = upload(&s, t, Some("unsent.txt"), b"never sent".to_vec()).await;
            let (_, deleted) = upload(&s, t, Some("deleted.png"), png(10, 10)).await;
            let mut a = alice.visitor.ws().await;
            a.send_json(json!({"type":"hello"})).await;
            a.expect_type("welcome").await;
            a.join("general").await;
            let kept_id = kept["id"].as_str().unwrap();
            let deleted_id = deleted["id"].as_str().unwrap();
            send_files(&mut a, "general", "kept", &[kept_id], "k").await;
            let ack = send_files(&mut a, "general", "to delete", &[deleted_id], "d").await;
            a.send_json(json!({"type":"delete","room":"general","id":ack["id"]})).await;
            let changed = a.recv_where("deleted", |v| typ(v) == "changed").await;
            assert!(changed["message"].get("attachments").is_none(), "{changed}");
            // A day later (and past the sweep's grace for new files).
            exec_sql(&s, "UPDATE file_uploads SET created_ms = created_ms - 90000000").await;
            exec_sql(&s, "UPDATE files SET touched_ms = touched_ms - 90000000").await;
            let unsent_url = format!("/files/{}/unsent.txt", unsent["id"].as_str().unwrap());
            let deleted_url = format!("/files/{deleted_id}/thumb");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let gone = fetch(&s, &unsent_url, t, None).await.status() == 404
                    && fetch(&s, &deleted_url, t, None).await.status() == 404;
                if gone {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the sweep removed nothing");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            s.wait_log("the sweep", |l| l.contains("removed 2 files")).await;
            assert_eq!(fetch(&s, &format!("/files/{kept_id}/kept.txt"), t, None).await.status(), 200);
            if blobs == Blobs::Dir {
                assert_eq!(stored_blobs(&s), (1, 0), "only the kept file's bytes remain");
            }
        }
    }
}

/// An upload over a raw connection: `length` announced, `body` sent, then
/// (with `close`) the sending side shut. Returns the status line and
/// headers, or `None` when the server closed without answering.
async fn raw_upload(
    s: &Server,
    token: &str,
    length: Option<u64>,
    body: &[u8],
    close: bool,
) -> Option<String> {
    let addr = s.addr;
    let token = token.to_string();
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = format!(
            "POST /api/files?name=raw.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n"
        );
        match length {
            Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            None => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        c.write_all(head.as_bytes()).unwrap();
        if length.is_some() {
            let _ = c.write_all(&body);
        } else {
            for chunk in body.chunks(64 * 1024) {
                let _ = c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                let _ = c.write_all(chunk);
                let _ = c.write_all(b"\r\n");
            }
        }
        if close {
            let _ = c.shutdown(std::net::Shutdown::Write);
        }
        let mut buf = vec![0u8; 4096];
        match c.read(&mut buf) {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        }
    })
    .await
    .expect("raw upload")
}

/// `causerie backup` copies the files beside the database's copy, and a
/// server on the copy serves them.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_carries_the_files() {
    let s = server(Blobs::Dir, ServerOpts::new()).await;
    let alice = member(&s, "alice").await;
    let (_, file) = upload(&s, Some(&alice.token), Some("photo.png"), png(40, 30)).await;
    let id = file["id"].as_str().unwrap().to_string();
    let mut a = alice.visitor.ws().await;
    a.send_json(json!({"type":"hello"})).await;
    a.expect_type("welcome").await;
    a.join("general").await;
    send_files(&mut a, "general", "a photo", &[&id], "b").await;
    let copy = fresh_dir();
    let path = copy.path().join("chat.db");
    let out = cli(&s, &["backup", path.to_str().unwrap()], None).expect_ok();
    assert!(out.stdout.contains("2 files"), "{out:?}");
    assert!(
        copy.path()
            .join("chat-files")
            .join(&id[..2])
            .join(&id)
            .exists()
    );
    let restored = Server::start_with(ServerOpts::new().dir(copy)).await;
    let res = fetch(&restored, &format!("/files/{id}/photo.png"), None, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(sha256_hex(&res.bytes().await.unwrap()), id);
}
