//! The pages the app's router serves, as the server needs to know them: to
//! give a page's visitor a guest cookie, and to read a chat page's room
//! before rendering it. The one list is the app's own `<Routes>`
//! (`leptos_axum::generate_route_list`); nothing here repeats it.

use percent_encoding::percent_decode_str;

/// The parameter of a chat page's path that names its room.
const ROOM_PARAM: &str = "room";

/// One segment of a route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// The app's page routes.
#[derive(Debug, Clone, Default)]
pub struct Pages {
    routes: Vec<Vec<Segment>>,
}

impl Pages {
    /// The pages of these route paths, written as the router writes them
    /// (`/r/:room` or `/r/{room}`).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let routes = paths
            .into_iter()
            .map(|p| {
                segments(p)
                    .map(|s| {
                        let param = s
                            .strip_prefix(':')
                            .or_else(|| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
                        match param {
                            Some(name) => Segment::Param(name.to_string()),
                            None => Segment::Literal(s.to_string()),
                        }
                    })
                    .collect()
            })
            .collect();
        Pages { routes }
    }

    /// The route `path` is a page of, if any.
    fn route(&self, path: &str) -> Option<&[Segment]> {
        let given: Vec<&str> = segments(path).collect();
        self.routes
            .iter()
            .find(|r| {
                r.len() == given.len()
                    && r.iter().zip(&given).all(|(seg, g)| match seg {
                        Segment::Literal(l) => l == g,
                        Segment::Param(_) => !g.is_empty(),
                    })
            })
            .map(Vec::as_slice)
    }

    /// Whether `path` is one of the app's pages.
    pub fn is_page(&self, path: &str) -> bool {
        self.route(path).is_some()
    }

    /// The room a chat page shows: its `room` parameter, percent-decoded as
    /// the router decodes it; `home` for the root page. `None` for any
    /// other path.
    pub fn room_of(&self, path: &str, home: &str) -> Option<String> {
        let route = self.route(path)?;
        if route.is_empty() {
            return Some(home.to_string());
        }
        let at = route
            .iter()
            .position(|s| *s == Segment::Param(ROOM_PARAM.to_string()))?;
        let raw = segments(path).nth(at)?;
        Some(percent_decode_str(raw).decode_utf8_lossy().into_owned())
    }
}

/// A path's segments; a trailing slash makes no empty one.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let path = path.trim_start_matches('/');
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').filter(move |_| !path.is_empty())
}

#[cfg(test)]
mod tests {
    use super::Pages;

    fn pages() -> Pages {
        Pages::new(["/", "/r/:room", "/login", "/account"])
    }

    #[test]
    fn chat_page_paths_name_their_room() {
        let p = pages();
        assert_eq!(p.room_of("/", "general").as_deref(), Some("general"));
        assert_eq!(p.room_of("/r/rust", "general").as_deref(), Some("rust"));
        assert_eq!(p.room_of("/r/rust/", "general").as_deref(), Some("rust"));
        assert_eq!(
            p.room_of("/r/dm%3Aalice%3Abob", "general").as_deref(),
            Some("dm:alice:bob")
        );
        assert_eq!(p.room_of("/r/", "general"), None);
        assert_eq!(p.room_of("/r/a/b", "general"), None);
        assert_eq!(p.room_of("/login", "general"), None);
        assert_eq!(p.room_of("/rooms", "general"), None);
    }

    #[test]
    fn only_the_apps_routes_are_pages() {
        let p = Pages::new(["/", "/r/{room}", "/login"]);
        for page in ["/", "/r/x", "/login", "/login/"] {
            assert!(p.is_page(page), "{page}");
        }
        for other in [
            "/api/rooms",
            "/ws",
            "/pkg/causerie.js",
            "/healthz",
            "/_sfn/login",
            "/r",
        ] {
            assert!(!p.is_page(other), "{other}");
        }
    }
}
