//! Property tests of the wire types and validators of `causerie::protocol`:
//! decoding never panics, whatever parses re-encodes to the same frame, a
//! JSON object parses exactly when PROTOCOL.md says it should, and the
//! validators accept exactly their documented alphabets.
//!
//! `PROTOCOL.md`: a name is 1 to 32 letters, digits, `_`, `-`, `.`; a room
//! is 1 to 64 of `[a-z0-9_-]` or `dm:<a>:<b>` (valid, sorted, distinct
//! names); a body is 1 to 4000 characters after trimming; a nonce is 1 to
//! 64 bytes (PROTOCOL-NOTES.md).
//!
//! The number of cases comes from `PROPTEST_CASES` (default 256);
//! `scripts/fuzz.sh` runs them by the million.

use std::collections::BTreeMap;

use causerie::protocol::{
    ClientFrame, Invalid, MAX_BODY_CHARS, MAX_NAME_CHARS, MAX_NONCE_LEN, MAX_ROOM_CHARS, Resume,
    RoomKind, clean_body, dm_room, group_room, parse_room, validate_name, validate_nonce,
};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

const TYPES: [&str; 6] = ["hello", "join", "leave", "send", "history", "typing"];
const FIELDS: [&str; 8] = [
    "name", "token", "resume", "room", "body", "nonce", "before", "limit",
];

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        (-3i64..300).prop_map(Value::from),
        // Finite only (JSON has no NaN); generated, not filtered, so that a
        // million cases do not run into proptest's limit of rejections.
        (prop::num::f64::POSITIVE
            | prop::num::f64::NEGATIVE
            | prop::num::f64::NORMAL
            | prop::num::f64::SUBNORMAL
            | prop::num::f64::ZERO)
            .prop_map(|f| Value::Number(Number::from_f64(f).expect("finite"))),
        any::<String>().prop_map(Value::String),
        "[a-z0-9_-]{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string),
        Just("type".to_string()),
        "[a-z_]{1,8}",
        any::<String>(),
    ]
}

/// A value of the type a known field wants, or anything at all.
fn field_value(field: &str) -> BoxedStrategy<Value> {
    let typed: BoxedStrategy<Value> = match field {
        "name" | "token" | "room" | "body" | "nonce" => prop_oneof![
            "[a-z0-9_:.-]{0,12}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
            Just(Value::Null),
        ]
        .boxed(),
        "resume" => prop::collection::btree_map(
            "[a-z0-9_-]{1,8}",
            prop_oneof![any::<i64>().prop_map(Value::from), json_leaf()],
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed(),
        "before" => prop_oneof![any::<i64>().prop_map(Value::from), json_leaf()].boxed(),
        "limit" => prop_oneof![
            any::<u32>().prop_map(Value::from),
            (0u64..300).prop_map(Value::from),
            json_leaf()
        ]
        .boxed(),
        _ => json_value().boxed(),
    };
    prop_oneof![3 => typed, 1 => json_value()].boxed()
}

/// JSON objects shaped like client frames: a `type` among the known ones
/// (mostly), known fields with values of the right type (mostly) and
/// unknown fields with anything.
fn frame_object() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        8 => prop::sample::select(TYPES.to_vec()).prop_map(Value::from),
        1 => prop::sample::select(vec!["ack", "message", "welcome", "HELLO", "Join", ""])
            .prop_map(Value::from),
        1 => json_leaf(),
    ];
    let known = prop::collection::btree_map(
        prop::sample::select(FIELDS.to_vec()),
        Just(()),
        0..=FIELDS.len(),
    )
    .prop_flat_map(|keys| {
        keys.into_keys()
            .map(|k| field_value(k).prop_map(move |v| (k.to_string(), v)))
            .collect::<Vec<_>>()
    });
    let unknown = prop::collection::vec(("[a-z_]{1,8}|.{0,6}", json_value()), 0..3);
    (
        prop::option::weighted(0.95, ty),
        known,
        unknown,
        any::<bool>(),
    )
        .prop_map(|(ty, known, unknown, type_last)| {
            let mut m = Map::new();
            if !type_last && let Some(t) = &ty {
                m.insert("type".into(), t.clone());
            }
            for (k, v) in unknown {
                if k != "type" && !FIELDS.contains(&k.as_str()) {
                    m.insert(k, v);
                }
            }
            for (k, v) in known {
                m.insert(k, v);
            }
            if type_last && let Some(t) = ty {
                m.insert("type".into(), t);
            }
            Value::Object(m)
        })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let s = || any::<String>();
    prop_oneof![
        (
            prop::option::of(s()),
            prop::option::of(s()),
            prop::collection::btree_map(s(), any::<i64>(), 0..4)
        )
            .prop_map(|(name, token, resume)| ClientFrame::Hello {
                name,
                token,
                resume: resume
                    .into_iter()
                    .map(|(room, id)| {
                        // Both forms: version 1's id, and 1.1's id and rev.
                        let at = if id % 2 == 0 {
                            Resume::Id(id)
                        } else {
                            Resume::At { id, rev: id / 3 }
                        };
                        (room, at)
                    })
                    .collect()
            }),
        s().prop_map(|room| ClientFrame::Join { room }),
        s().prop_map(|room| ClientFrame::Leave { room }),
        (
            s(),
            s(),
            prop::option::of(s()),
            prop::option::of(any::<i64>())
        )
            .prop_map(|(room, body, nonce, reply_to)| ClientFrame::Send {
                room,
                body,
                nonce,
                reply_to,
                attachments: Vec::new(),
            }),
        (
            s(),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(room, before, limit)| ClientFrame::History {
                room,
                before,
                limit
            }),
        s().prop_map(|room| ClientFrame::Typing { room }),
    ]
}

/// Strings near JSON: brackets, quotes, escapes, the known words.
fn jsonish_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"[{}\[\]":,a-z0-9 .\\u-]{0,48}"#,
        (
            prop::sample::select(TYPES.to_vec()),
            r#"[{}\[\]":,a-z0-9 .\\-]{0,32}"#
        )
            .prop_map(|(t, rest)| format!(r#"{{"type":"{t}",{rest}"#)),
        frame_object().prop_map(|v| {
            // Valid JSON, then cut or doubled somewhere.
            let s = v.to_string();
            let cut = s.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}{}", &s[..cut], &s[cut..].replacen(',', ",,", 1))
        }),
    ]
}

// ---------------------------------------------------------------------------
// What PROTOCOL.md says a frame object parses to
// ---------------------------------------------------------------------------

/// An optional string field: absent or null → None; a string → Some;
/// anything else → not a frame.
fn opt_str(o: &Map<String, Value>, k: &str) -> Result<Option<String>, ()> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

fn req_str(o: &Map<String, Value>, k: &str) -> Result<String, ()> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(()),
    }
}

fn expected(v: &Value) -> Option<ClientFrame> {
    let o = v.as_object()?;
    let f = match o.get("type")?.as_str()? {
        "hello" => ClientFrame::Hello {
            name: opt_str(o, "name").ok()?,
            token: opt_str(o, "token").ok()?,
            resume: match o.get("resume") {
                None => BTreeMap::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| {
                        let at = match v {
                            Value::Object(r) => Resume::At {
                                id: r.get("id")?.as_i64()?,
                                rev: match r.get("rev") {
                                    None => 0,
                                    Some(rev) => rev.as_i64()?,
                                },
                            },
                            v => Resume::Id(v.as_i64()?),
                        };
                        Some((k.clone(), at))
                    })
                    .collect::<Option<_>>()?,
                Some(_) => return None,
            },
        },
        "join" => ClientFrame::Join {
            room: req_str(o, "room").ok()?,
        },
        "leave" => ClientFrame::Leave {
            room: req_str(o, "room").ok()?,
        },
        "typing" => ClientFrame::Typing {
            room: req_str(o, "room").ok()?,
        },
        "send" => ClientFrame::Send {
            room: req_str(o, "room").ok()?,
            body: req_str(o, "body").ok()?,
            nonce: opt_str(o, "nonce").ok()?,
            reply_to: match o.get("reply_to") {
                None | Some(Value::Null) => None,
                Some(r) => Some(r.as_i64()?),
            },
            attachments: match o.get("attachments") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|f| f.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
                Some(_) => return None,
            },
        },
        "history" => ClientFrame::History {
            room: req_str(o, "room").ok()?,
            before: match o.get("before") {
                None | Some(Value::Null) => None,
                Some(b) => Some(b.as_i64()?),
            },
            limit: match o.get("limit") {
                None | Some(Value::Null) => None,
                Some(l) => Some(u32::try_from(l.as_u64()?).ok()?),
            },
        },
        _ => return None,
    };
    Some(f)
}

fn roundtrip(f: &ClientFrame) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(f).expect("a frame encodes");
    let back: ClientFrame = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{text} does not parse back: {e}")))?;
    prop_assert_eq!(&back, f, "re-encoded as {}", text);
    Ok(())
}

// ---------------------------------------------------------------------------
// Models of the validators, from the documented alphabets
// ---------------------------------------------------------------------------

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn name_ok(s: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&s.chars().count()) && s.chars().all(name_char)
}

fn room_model(s: &str) -> Option<RoomKind<'_>> {
    if let Some(rest) = s.strip_prefix("dm:") {
        let parts: Vec<&str> = rest.split(':').collect();
        let ok = (2..=8).contains(&parts.len())
            && parts.iter().all(|p| name_ok(p))
            && parts.windows(2).all(|w| w[0] < w[1]);
        return ok.then_some(RoomKind::Direct(parts));
    }
    if let Some(rest) = s.strip_prefix('~') {
        return room_model(rest)
            .filter(|k| *k == RoomKind::Public)
            .map(|_| RoomKind::Private);
    }
    let public = (1..=MAX_ROOM_CHARS).contains(&s.len())
        && s.bytes()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    public.then_some(RoomKind::Public)
}

/// Characters a validator must see: the documented ones, near misses
/// (upper case, ':', white space, controls, look-alikes, non-ASCII letters).
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select("abcxyz0189_-".chars().collect::<Vec<_>>()),
        1 => prop::sample::select(
            "AZ.:/ \t\n\r\0<>\"'`@#%+=~é中ßΩ٣²\u{200b}\u{202e}\u{feff}\u{a0}\u{3000}\u{301}😀"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..=max).prop_map(|v| v.into_iter().collect())
}

fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.-]{1,32}",
        prop::collection::vec(
            prop::sample::select("aZ9_.-éßΩ中٣".chars().collect::<Vec<_>>()),
            1..=32
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn white() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}', '\u{a0}', '\u{2028}', '\u{3000}',
        ]),
        0..4,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// A body of about `n` characters (white space inside and around).
fn body_strategy() -> impl Strategy<Value = String> {
    let core = |len: std::ops::RangeInclusive<usize>| {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'é', '😀', ' ', '\n', '\u{200b}', '<', '\0']),
            len,
        )
        .prop_map(|v| v.into_iter().collect::<String>())
    };
    prop_oneof![
        (white(), core(0..=12), white()),
        (
            white(),
            core(MAX_BODY_CHARS - 4..=MAX_BODY_CHARS + 4),
            white()
        ),
    ]
    .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    /// Any text: decoding never panics; what parses re-encodes to itself.
    #[test]
    fn any_text_decodes_without_panic(text in jsonish_text()) {
        if let Ok(f) = serde_json::from_str::<ClientFrame>(&text) {
            roundtrip(&f)?;
        }
    }

    /// Any JSON object shaped like a frame parses exactly when PROTOCOL.md
    /// says it should (unknown fields ignored; optional fields absent or
    /// null), to what it says, and re-encodes to the same frame.
    #[test]
    fn frame_objects_parse_exactly_as_documented(v in frame_object()) {
        let text = v.to_string();
        let got = serde_json::from_str::<ClientFrame>(&text).ok();
        prop_assert_eq!(&got, &expected(&v), "frame {}", text);
        if let Some(f) = got {
            roundtrip(&f)?;
        }
    }

    /// Any JSON value at all: no panic; a frame only from an object.
    #[test]
    fn any_json_value_decodes_without_panic(v in json_value()) {
        let got = serde_json::from_str::<ClientFrame>(&v.to_string()).ok();
        prop_assert_eq!(&got, &expected(&v), "value {}", v);
        if let Some(f) = got {
            roundtrip(&f)?;
        }
    }

    /// Every frame a client can build encodes and parses back to itself.
    #[test]
    fn every_client_frame_roundtrips(f in client_frame()) {
        roundtrip(&f)?;
    }

    #[test]
    fn validate_name_accepts_exactly_the_name_alphabet(s in prop_oneof![
        tricky_string(40),
        valid_name(),
        any::<String>(),
    ]) {
        prop_assert_eq!(validate_name(&s).is_ok(), name_ok(&s), "{:?}", s);
        if validate_name(&s).is_err() {
            prop_assert_eq!(validate_name(&s), Err(Invalid::Name));
        }
    }

    #[test]
    fn documented_names_are_valid_and_separators_are_not(
        s in valid_name(),
        bad in prop::sample::select(vec![' ', ':', '/', '<', '@', '\n', '\0', '\u{200b}', '\u{202e}', '😀']),
        at in any::<prop::sample::Index>(),
    ) {
        prop_assert_eq!(validate_name(&s), Ok(()), "{:?}", s);
        let mut with_bad: Vec<char> = s.chars().collect();
        with_bad.insert(at.index(with_bad.len() + 1), bad);
        let with_bad: String = with_bad.into_iter().collect();
        prop_assert!(validate_name(&with_bad).is_err(), "{:?}", with_bad);
        let long = format!("{s}{}", "x".repeat(MAX_NAME_CHARS + 1 - s.chars().count()));
        prop_assert!(validate_name(&long).is_err(), "{} chars", long.chars().count());
    }

    #[test]
    fn parse_room_accepts_exactly_public_names_and_sorted_dms(s in prop_oneof![
        tricky_string(70),
        "[a-z0-9_-]{0,66}",
        tricky_string(70).prop_map(|s| format!("dm:{s}")),
        (valid_name(), valid_name()).prop_map(|(a, b)| format!("dm:{a}:{b}")),
        proptest::collection::vec(valid_name(), 1..10).prop_map(|n| format!("dm:{}", n.join(":"))),
        "~[a-z0-9_~-]{0,66}",
        (valid_name(), tricky_string(8), valid_name()).prop_map(|(a, m, b)| format!("dm:{a}{m}:{b}")),
        any::<String>(),
    ]) {
        let got = parse_room(&s);
        prop_assert_eq!(got.clone().ok(), room_model(&s), "{:?}", s);
        match got {
            Ok(RoomKind::Direct(names)) => {
                let mut reversed = names.clone();
                reversed.reverse();
                prop_assert_eq!(group_room(names.iter().copied()), Some(s.clone()));
                prop_assert_eq!(group_room(reversed), Some(s.clone()));
                if let [a, b] = names[..] {
                    prop_assert_eq!(dm_room(b, a), s.clone());
                }
            }
            Ok(RoomKind::Public) => prop_assert!(!s.contains(':')),
            Ok(RoomKind::Private) => prop_assert!(s.starts_with('~') && !s.contains(':')),
            Err(e) => prop_assert_eq!(e, Invalid::Room),
        }
    }

    #[test]
    fn public_room_names_and_dm_rooms_are_valid(
        public in "[a-z0-9_-]{1,64}",
        a in valid_name(),
        b in valid_name(),
    ) {
        prop_assert_eq!(parse_room(&public), Ok(RoomKind::Public));
        let dm = dm_room(&a, &b);
        if a == b {
            prop_assert!(parse_room(&dm).is_err(), "{}", dm);
        } else {
            let (x, y) = if a < b { (a.as_str(), b.as_str()) } else { (b.as_str(), a.as_str()) };
            prop_assert_eq!(parse_room(&dm), Ok(RoomKind::Direct(vec![x, y])));
            prop_assert_eq!(dm_room(&b, &a), dm.clone());
        }
        let too_long = format!("{public}{}", "a".repeat(MAX_ROOM_CHARS + 1 - public.len()));
        prop_assert!(parse_room(&too_long).is_err());
        let upper = format!("{public}A");
        prop_assert!(parse_room(&upper).is_err());
    }

    #[test]
    fn clean_body_trims_and_counts_characters(s in prop_oneof![
        body_strategy(),
        any::<String>(),
    ]) {
        let t = s.trim();
        let n = t.chars().count();
        if s.contains('\0') {
            // No backend can store U+0000: refused whatever the rest.
            prop_assert_eq!(clean_body(&s), Err(Invalid::Nul));
            return Ok(());
        }
        match clean_body(&s) {
            Ok(b) => {
                prop_assert!((1..=MAX_BODY_CHARS).contains(&n), "accepted {} chars", n);
                prop_assert_eq!(b, t);
                prop_assert_eq!(b.trim(), b);
            }
            Err(Invalid::EmptyBody) => prop_assert_eq!(n, 0),
            Err(Invalid::LongBody) => prop_assert!(n > MAX_BODY_CHARS, "{} chars refused", n),
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
    }

    #[test]
    fn validate_nonce_accepts_1_to_64_bytes(
        s in prop_oneof![
            prop::collection::vec(prop::sample::select(vec!['a', 'é', '€', '😀', '-']), 0..70)
                .prop_map(|v| v.into_iter().collect::<String>()),
            any::<String>(),
        ],
        absent in any::<bool>(),
    ) {
        if absent {
            prop_assert_eq!(validate_nonce(None), Ok(()));
        }
        let ok = (1..=MAX_NONCE_LEN).contains(&s.len());
        let nul = s.contains('\0');
        match validate_nonce(Some(&s)) {
            Ok(()) => prop_assert!(ok && !nul, "accepted a nonce of {} bytes: {:?}", s.len(), s),
            Err(Invalid::Nul) => prop_assert!(ok && nul, "{:?}", s),
            Err(e) => {
                prop_assert!(!ok, "refused a nonce of {} bytes", s.len());
                prop_assert_eq!(e, Invalid::Nonce);
            }
        }
    }
}
