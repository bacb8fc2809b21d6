//! Web Push end to end, without the Internet: the test runs its own HTTP
//! endpoint as the push service, subscribes with a key pair it made, and
//! decrypts (RFC 8291) what the server pushes. Who gets a push, what it
//! says, forgetting a gone endpoint, retries, a hanging service that must
//! not slow messages, and every refusal of the subscription API.

use crate::common::*;
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};
use web_push_native::jwt_simple::prelude::*;
use web_push_native::{Auth, p256};

const PASSWORD: &str = "correct horse battery";

/// One request the push service received.
struct Pushed {
    path: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

/// The test's push service: answers by path (`/ok/...` 201, `/gone/...`
/// 410, `/flaky/...` 500 the first time then 201, `/hang/...` never), and
/// hands every request to the test.
struct PushService {
    origin: String,
    received: Mutex<mpsc::UnboundedReceiver<Pushed>>,
}

impl PushService {
    async fn start() -> Arc<PushService> {
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = Arc::new(std::sync::Mutex::new(
            std::collections::HashSet::<String>::new(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let seen = seen.clone();
                async move {
                    let path = uri.path().to_string();
                    let _ = tx.send(Pushed {
                        path: path.clone(),
                        headers,
                        body: body.to_vec(),
                    });
                    let first = seen.lock().unwrap().insert(path.clone());
                    let status = if path.starts_with("/gone/") {
                        410
                    } else if path.starts_with("/flaky/") && first {
                        500
                    } else if path.starts_with("/hang/") {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        201
                    } else {
                        201
                    };
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Arc::new(PushService {
            origin,
            received: Mutex::new(rx),
        })
    }

    async fn next(&self) -> Pushed {
        tokio::time::timeout(Duration::from_secs(15), self.received.lock().await.recv())
            .await
            .expect("a push within 15 s")
            .expect("push service running")
    }

    async fn none_within(&self, d: Duration) -> Option<Pushed> {
        tokio::time::timeout(d, self.received.lock().await.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A browser's push subscription: its key pair and secret.
struct Device {
    endpoint: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Device {
    fn new(service: &PushService, path: &str) -> Device {
        let secret = loop {
            if let Ok(k) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break k;
            }
        };
        Device {
            endpoint: format!("{}{path}", service.origin),
            secret,
            auth: rand::random(),
        }
    }

    fn json(&self, previews: bool) -> Value {
        let public = self.secret.public_key().to_sec1_bytes();
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": Base64UrlUnpadded::encode_string(&public),
                "auth": Base64UrlUnpadded::encode_string(&self.auth),
            },
            "previews": previews,
        })
    }

    /// Decrypts a push for this device and reads its JSON.
    fn open(&self, pushed: &Pushed) -> Value {
        let auth = Auth::clone_from_slice(&self.auth);
        let clear = web_push_native::decrypt(pushed.body.clone(), &self.secret, &auth)
            .expect("the push decrypts with the device's keys");
        serde_json::from_slice(&clear).expect("the push carries JSON")
    }
}

async fn call(v: &Visitor<'_>, method: reqwest::Method, body: Option<String>) -> (u16, Value) {
    let mut req = v
        .server
        .http()
        .request(method, v.server.url("/api/push/subscriptions"))
        .header("content-type", "application/json");
    let cookies = v.cookies();
    if !cookies.is_empty() {
        req = req.header("cookie", cookies);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let res = req.send().await.expect("push API");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn subscribe(v: &Visitor<'_>, device: &Device, previews: bool) {
    let (status, body) = call(
        v,
        reqwest::Method::POST,
        Some(device.json(previews).to_string()),
    )
    .await;
    assert_eq!(status, 201, "subscribe: {body}");
}

async fn devices(v: &Visitor<'_>) -> Vec<Value> {
    let (status, body) = call(v, reqwest::Method::GET, None).await;
    assert_eq!(status, 200, "list: {body}");
    body["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn account<'a>(s: &'a Server, name: &str) -> Visitor<'a> {
    let mut v = Visitor::new(s);
    register(&mut v, name, PASSWORD).await;
    v
}

async fn session(v: &Visitor<'_>) -> Client {
    let mut ws = v.ws().await;
    ws.send_json(json!({"type":"hello"})).await;
    ws.expect_type("welcome").await;
    ws
}

async fn start(service: &PushService) -> Server {
    Server::start_with(
        ServerOpts::new()
            .no_rate_limit()
            .env("CAUSERIE_REGISTRATION", "open")
            .env("CAUSERIE_PUSH_EXEMPT", &service.origin)
            .env("CAUSERIE_PUSH_TIMEOUT", "1s"),
    )
    .await
}

both_backends! {
    async fn a_person_who_is_away_gets_an_encrypted_push_they_can_read() {
        let service = PushService::start().await;
        let s = start(&service).await;
        let alice = account(&s, "alice").await;
        let bob = account(&s, "bob").await;
        let (status, key) = s.get_json("/api/push/key").await;
        assert_eq!(status, 200);
        let key = key["key"].as_str().expect("key").to_string();
        let point = Base64UrlUnpadded::decode_vec(&key).expect("base64url key");
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");

        let phone = Device::new(&service, "/ok/bob-phone");
        subscribe(&bob, &phone, false).await;
        let listed = devices(&bob).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["endpoint"], phone.endpoint.as_str());
        assert!(devices(&alice).await.is_empty(), "another account's devices stay theirs");

        // A direct message to bob, who has no connection: a push, sealed.
        let mut a = session(&alice).await;
        a.join("dm:alice:bob").await;
        let n = a.nonce();
        a.send_msg("dm:alice:bob", "lunch at **noon**?", &n).await;
        let pushed = service.next().await;
        assert_eq!(pushed.path, "/ok/bob-phone");
        assert_eq!(pushed.headers["content-encoding"], "aes128gcm");
        assert!(pushed.headers.contains_key("ttl"));
        assert!(!String::from_utf8_lossy(&pushed.body).contains("noon"), "the body is encrypted");
        let shown = phone.open(&pushed);
        assert_eq!(shown["title"], "New direct message", "no text on a lock screen: {shown}");
        assert_eq!(shown["body"], "");
        assert_eq!(shown["room"], "dm:alice:bob");
        assert_eq!(shown["url"], "/r/dm:alice:bob?around=1");

        // Signed with the server's key, for this push service.
        let vapid = pushed.headers["authorization"].to_str().unwrap().to_string();
        let (token, k) = vapid
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap_or_else(|| panic!("VAPID header: {vapid}"));
        assert_eq!(k, key);
        let signer = ES256PublicKey::from_bytes(&point).unwrap();
        let claims = signer
            .verify_token::<NoCustomClaims>(token, None)
            .expect("the VAPID token verifies with the published key");
        // web-push-native names the scheme and host (real push services
        // listen on 443, where that is the whole origin).
        assert_eq!(claims.audiences.unwrap().into_string().unwrap(), "http://127.0.0.1");

        // With previews allowed on the device, the text shows.
        subscribe(&bob, &phone, true).await;
        let n = a.nonce();
        a.send_msg("dm:alice:bob", "the `deploy` is done", &n).await;
        let shown = phone.open(&service.next().await);
        assert_eq!(shown["title"], "alice");
        assert_eq!(shown["body"], "the deploy is done");

        // A public room: a mention pushes, other talk does not.
        a.join("general").await;
        let n = a.nonce();
        a.send_msg("general", "weather is nice", &n).await;
        let n = a.nonce();
        a.send_msg("general", "@bob can you look?", &n).await;
        let shown = phone.open(&service.next().await);
        assert_eq!(shown["title"], "alice in general", "{shown}");
        assert_eq!(shown["body"], "@bob can you look?");
        assert_eq!(shown["url"], "/r/general?around=2");

        // Bob connected: nothing; gone again: pushes resume.
        let b = session(&bob).await;
        let n = a.nonce();
        a.send_msg("dm:alice:bob", "are you there?", &n).await;
        assert!(service.none_within(Duration::from_millis(1500)).await.is_none(), "no push while connected");
        drop(b);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = a.nonce();
        a.send_msg("dm:alice:bob", "back later then", &n).await;
        let shown = phone.open(&service.next().await);
        assert_eq!(shown["body"], "back later then", "the next push is this one, not the one sent while connected");

        // Removed from the account page: no more pushes.
        let (status, _) = call(&bob, reqwest::Method::DELETE, Some(json!({"endpoint": phone.endpoint}).to_string())).await;
        assert_eq!(status, 204);
        assert!(devices(&bob).await.is_empty());
        let n = a.nonce();
        a.send_msg("dm:alice:bob", "anyone?", &n).await;
        assert!(service.none_within(Duration::from_millis(1500)).await.is_none());
    }

    async fn gone_endpoints_are_forgotten_and_failing_services_retried_without_slowing_messages() {
        let service = PushService::start().await;
        let s = start(&service).await;
        let alice = account(&s, "alice").await;
        let carol = account(&s, "carol").await;
        let dan = account(&s, "dan").await;
        let erin = account(&s, "erin").await;
        subscribe(&carol, &Device::new(&service, "/gone/carol"), false).await;
        let flaky = Device::new(&service, "/flaky/dan");
        subscribe(&dan, &flaky, false).await;
        subscribe(&erin, &Device::new(&service, "/hang/erin"), false).await;
        let mut a = session(&alice).await;

        // 410: the subscription goes.
        a.join("dm:alice:carol").await;
        let n = a.nonce();
        a.send_msg("dm:alice:carol", "hi carol", &n).await;
        assert_eq!(service.next().await.path, "/gone/carol");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !devices(&carol).await.is_empty() {
            assert!(Instant::now() < deadline, "a 410 endpoint is forgotten");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // 500, then accepted on the retry: the same push, twice.
        a.join("dm:alice:dan").await;
        let n = a.nonce();
        a.send_msg("dm:alice:dan", "hi dan", &n).await;
        let first = service.next().await;
        let second = service.next().await;
        assert_eq!((first.path.as_str(), second.path.as_str()), ("/flaky/dan", "/flaky/dan"));
        assert_eq!(flaky.open(&second)["room"], "dm:alice:dan");

        // A push service that never answers: messages go on at full speed.
        a.join("dm:alice:erin").await;
        let n = a.nonce();
        a.send_msg("dm:alice:erin", "hi erin", &n).await;
        assert_eq!(service.next().await.path, "/hang/erin");
        let t = Instant::now();
        for i in 0..20 {
            let n = a.nonce();
            a.send_msg("dm:alice:erin", &format!("still there? {i}"), &n).await;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "20 sends took {:?} behind a hanging push service", t.elapsed());
        let health = s.get_json("/healthz").await;
        assert_eq!(health.0, 200, "{health:?}");
    }

    async fn the_subscription_api_refuses_what_it_cannot_use() {
        let service = PushService::start().await;
        let s = start(&service).await;
        let bob = account(&s, "bob").await;
        let good = Device::new(&service, "/ok/bob");
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = good.json(false);
            f(&mut v);
            v.to_string()
        };
        let cases: Vec<(&str, String, u16)> = vec![
            ("not https", with(&|v| v["endpoint"] = json!("http://push.example.com/x")), 400),
            ("loopback", with(&|v| v["endpoint"] = json!("https://127.0.0.1:8443/x")), 400),
            ("metadata address", with(&|v| v["endpoint"] = json!("https://169.254.169.254/latest")), 400),
            ("private network", with(&|v| v["endpoint"] = json!("https://[fd00::1]/x")), 400),
            ("localhost", with(&|v| v["endpoint"] = json!("https://localhost/x")), 400),
            ("another port of the exempt host", with(&|v| v["endpoint"] = json!("http://127.0.0.1:1/x")), 400),
            ("not a URL", with(&|v| v["endpoint"] = json!("push me")), 400),
            ("key off the curve", with(&|v| v["keys"]["p256dh"] = json!(format!("BA{}", "A".repeat(85)))), 400),
            ("key too short", with(&|v| v["keys"]["p256dh"] = json!("BAAA")), 400),
            ("auth of 4 bytes", with(&|v| v["keys"]["auth"] = json!("AAAAAA")), 400),
            ("no keys", json!({"endpoint": good.endpoint}).to_string(), 400),
            ("malformed JSON", "{\"endpoint\":".to_string(), 400),
            ("a huge body", with(&|v| v["pad"] = json!("x".repeat(100_000))), 413),
            ("a huge endpoint", with(&|v| v["endpoint"] = json!(format!("{}/{}", service.origin, "a".repeat(1500)))), 400),
        ];
        for (what, body, want) in cases {
            let (status, answer) = call(&bob, reqwest::Method::POST, Some(body)).await;
            assert_eq!(status, want, "{what}: {answer}");
            assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {answer}");
        }
        assert!(devices(&bob).await.is_empty(), "nothing refused was kept");

        // No account, no devices: a visitor, then a cross-site page.
        let visitor = Visitor::new(&s);
        let (status, _) = call(&visitor, reqwest::Method::POST, Some(good.json(false).to_string())).await;
        assert_eq!(status, 401);
        let res = s
            .http()
            .post(s.url("/api/push/subscriptions"))
            .header("content-type", "application/json")
            .header("cookie", bob.cookies())
            .header("origin", "https://evil.example")
            .body(good.json(false).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 403, "a cross-origin subscription is refused");

        // Deleting what is not there.
        let (status, _) = call(&bob, reqwest::Method::DELETE, Some(json!({"endpoint": good.endpoint}).to_string())).await;
        assert_eq!(status, 404);
        subscribe(&bob, &good, false).await;
        assert_eq!(devices(&bob).await.len(), 1);
    }
}
