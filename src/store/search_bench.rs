//! A measurement, not a test: search times over a large history, on SQLite
//! and PostgreSQL. Run with
//!
//! ```sh
//! cargo test --release --features ssr --lib search_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `CAUSERIE_BENCH_MESSAGES` sets the fill (1,000,000 by default), and
//! PostgreSQL runs when `CAUSERIE_TEST_POSTGRES` is set, in a database of
//! its own. The history is written through the store's writer, as the
//! server writes it (batched, indexed as it goes): 100 rooms, 5 to 20 words a
//! message drawn from English and French words (accents included) with
//! Zipf-like frequencies, so the most common word is in most messages; the
//! rare word is in about one message in 10,000.

use super::{SqliteStore, Store, now_ms};
use sqlx::Connection;
use std::time::Instant;

const ROOMS: usize = 100;
const RARE: &str = "zéphyrine";
const SEARCHES: usize = 200;

/// Words people write, English and French, most common first.
const WORDS: &[&str] = &[
    "the",
    "de",
    "le",
    "and",
    "la",
    "to",
    "et",
    "is",
    "les",
    "it",
    "un",
    "you",
    "une",
    "that",
    "est",
    "we",
    "pas",
    "for",
    "pour",
    "on",
    "je",
    "this",
    "ça",
    "with",
    "avec",
    "be",
    "il",
    "have",
    "on",
    "are",
    "dans",
    "not",
    "qui",
    "what",
    "mais",
    "can",
    "plus",
    "just",
    "très",
    "will",
    "été",
    "déjà",
    "café",
    "meeting",
    "réunion",
    "demain",
    "tomorrow",
    "today",
    "aujourd'hui",
    "merci",
    "thanks",
    "problème",
    "problem",
    "déploiement",
    "deploy",
    "serveur",
    "server",
    "base",
    "données",
    "data",
    "écran",
    "screen",
    "équipe",
    "team",
    "fête",
    "noël",
    "hôpital",
    "forêt",
    "garçon",
    "où",
    "là",
    "voilà",
    "naïve",
    "réservé",
    "élève",
    "idée",
    "release",
    "bug",
    "fix",
    "review",
    "branche",
    "branch",
    "test",
    "tests",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "monday",
    "friday",
    "lunch",
    "déjeuner",
    "dîner",
    "soirée",
    "weekend",
    "vacances",
    "holiday",
    "août",
    "février",
    "décembre",
    "préféré",
    "favourite",
];

/// Syllables for rarer words, so that the vocabulary is large and varied.
const SYLLABLES: &[&str] = &[
    "ka", "ré", "lo", "mi", "tè", "su", "pa", "no", "vé", "ri", "do", "ça", "bu", "lé", "fi", "go",
];

/// A small deterministic generator (xorshift64*): the same history each run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The vocabulary: the common words, then 4,000 made of syllables.
fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
    let n = SYLLABLES.len();
    for i in 0..4_000 {
        words.push(format!(
            "{}{}{}",
            SYLLABLES[i % n],
            SYLLABLES[(i / n) % n],
            SYLLABLES[(i / n / n) % n]
        ));
    }
    words
}

/// A word with Zipf-like odds: word k about as often as 1/(k+1).
fn zipf_word<'a>(rng: &mut Rng, words: &'a [String]) -> &'a str {
    // Inverse of the continuous 1/x law over [1, n+1).
    let n = words.len() as f64;
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let k = ((n + 1.0).powf(u) - 1.0) as usize;
    &words[k.min(words.len() - 1)]
}

/// The i-th message of the history: (room index, body).
fn messages(count: usize) -> impl Iterator<Item = (usize, String)> {
    let words = vocabulary();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count).map(move |i| {
        let len = 5 + rng.below(16);
        let mut body: Vec<&str> = (0..len).map(|_| zipf_word(&mut rng, &words)).collect();
        if rng.below(10_000) == 0 {
            body.insert(rng.below(len), RARE);
        }
        (i % ROOMS, body.join(" "))
    })
}

fn room_name(r: usize) -> String {
    format!("bench-{r:03}")
}

/// Writes the history through the store, `WINDOW` sends in flight.
async fn fill(store: &dyn Store, count: usize) {
    const WINDOW: usize = 4_000;
    let mut pending = Vec::with_capacity(WINDOW);
    for (room, body) in messages(count) {
        let msg = super::NewMessage {
            room: room_name(room),
            author: "bench".into(),
            body,
            nonce: None,
            reply_to: None,
            mentions: Vec::new(),
            attachments: Vec::new(),
        };
        pending.push(store.submit(msg).await.unwrap());
        if pending.len() == WINDOW {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
}

/// p50 and p99 of `SEARCHES` searches of `query` over `rooms`, in ms, and
/// how many results the first page had.
async fn time_search(store: &dyn Store, rooms: &[String], query: &str) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(SEARCHES);
    let mut found = 0;
    for _ in 0..SEARCHES {
        let t = Instant::now();
        let page = store.search(rooms, query, None, 20).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        found = page.messages.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[SEARCHES / 2], times[SEARCHES * 99 / 100 - 1], found)
}

/// How many messages the bench holds.
fn fill_size() -> usize {
    std::env::var("CAUSERIE_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

async fn report(store: &dyn Store, what: &str, count: usize) {
    let all: Vec<String> = (0..ROOMS).map(room_name).collect();
    // A reader of every room, of a few (a newcomer to a big space, with
    // their direct messages), and of one (search within a room).
    for (readers, rooms) in [
        ("all rooms", &all[..]),
        ("3 rooms", &all[..3]),
        ("12 rooms", &all[..12]),
        ("1 room", &all[7..8]),
    ] {
        for (label, query) in [
            ("common word", "the"),
            ("common, accents", "ETE"),
            ("two common words", "le café"),
            ("rare word", "zephyrine"),
        ] {
            // One search first: caches warm as on a running server.
            store.search(rooms, query, None, 20).await.unwrap();
            let (p50, p99, found) = time_search(store, rooms, query).await;
            println!(
                "search bench {what}, {count} messages in {ROOMS} rooms, {label} {query:?} over {readers}: \
                 p50 {p50:.2} ms, p99 {p99:.2} ms ({found} on the first page)"
            );
        }
    }
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn search_bench_sqlite() {
    let count = fill_size();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    for r in 0..ROOMS {
        store.create_room(&room_name(r)).await.unwrap();
    }
    let t = Instant::now();
    fill(&store, count).await;
    let filled = t.elapsed().as_secs_f64();
    store.indexed().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}.search", path.display()))
        .await
        .unwrap();
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    println!(
        "search bench SQLite {version}: filled {count} messages in {filled:.1} s, \
         all indexed after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    report(&store, "SQLite", count).await;
    // The index as filled is several segments (FTS5 merges them little by
    // little as it is written); merged into one, as `optimize` does, each
    // word is one b-tree search.
    const PAGES: &str = "SELECT count(*) FROM messages_fts_data";
    let before: i64 = sqlx::query_scalar(PAGES)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let t = Instant::now();
    sqlx::query("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        .execute(&mut conn)
        .await
        .unwrap();
    println!(
        "search bench SQLite: optimize took {:.1} s (index rows {before} -> {})",
        t.elapsed().as_secs_f64(),
        sqlx::query_scalar::<_, i64>(PAGES)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    );
    report(&store, "SQLite, optimized", count).await;
    store.close().await;
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn search_bench_postgres() {
    let Ok(admin) = std::env::var("CAUSERIE_TEST_POSTGRES") else {
        eprintln!("skipped on PostgreSQL (set CAUSERIE_TEST_POSTGRES=postgres://...)");
        return;
    };
    let count = fill_size();
    let name = format!(
        "causerie_t_{}_{:08x}",
        now_ms() / 1000,
        rand::random::<u32>()
    );
    let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut server)
        .await
        .unwrap();
    let (base, _) = admin.split_once('?').unwrap_or((&admin, ""));
    let (host, _) = base.rsplit_once('/').expect("postgres://HOST/DATABASE");
    let url = format!("{host}/{name}");
    let store = super::PostgresStore::open(&url).await.unwrap();
    for r in 0..ROOMS {
        store.create_room(&room_name(r)).await.unwrap();
    }
    let t = Instant::now();
    fill(&store, count).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    // Alone: VACUUM refuses to run in the transaction of a statement list.
    sqlx::raw_sql("VACUUM ANALYZE messages")
        .execute(&mut conn)
        .await
        .unwrap();
    println!(
        "search bench PostgreSQL: filled {count} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    report(&store, "PostgreSQL", count).await;
    store.close().await;
    drop(conn);
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut server)
        .await
        .unwrap();
}
