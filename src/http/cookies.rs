//! The cookies this server reads and sets, parsed with the `cookie` crate.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// The guest cookie set by the page, naming who holds a guest name.
pub const GUEST: &str = "causerie_guest";
/// How long a browser keeps its guest cookie.
const GUEST_MAX_AGE: cookie::time::Duration = cookie::time::Duration::days(365);

/// The value of one cookie of a request.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that gives a browser its guest cookie.
pub fn set_guest(id: &str) -> Option<HeaderValue> {
    let cookie = Cookie::build((GUEST, id))
        .path("/")
        .max_age(GUEST_MAX_AGE)
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; causerie_guest=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(get(&h, GUEST).as_deref(), Some("abc"));
        assert_eq!(get(&h, "b").as_deref(), Some("2"));
        // A name that only ends like the cookie's is another cookie.
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xcauserie_guest=zz"),
        );
        assert_eq!(get(&h, GUEST), None);
    }

    #[test]
    fn the_guest_cookie_is_http_only_and_lax() {
        let v = set_guest("abc").expect("a valid header");
        let v = v.to_str().expect("ascii");
        assert!(v.starts_with("causerie_guest=abc"), "{v}");
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }
}
