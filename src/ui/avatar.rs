//! A person's avatar: the first letter of the name on a hue of its own.
//! Plain functions of a name, the same on the server and in the browser.

/// A stable hue for an author's name.
pub fn hue(name: &str) -> u32 {
    name.bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 360
}

/// The first letter of a name, for its avatar.
pub fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}
