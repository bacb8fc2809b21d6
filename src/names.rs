//! Names as identities: which names may be taken, and the one key by which
//! names are compared everywhere (accounts, guest reservations, guests
//! online, operator bots).
//!
//! A name is shown and stored as typed (direct-message rooms use it so);
//! two names are the same identity when their [`name_key`]s are equal.

use crate::protocol::{self, Invalid};
use unicode_normalization::UnicodeNormalization;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

/// The version of [`name_key`]; stores rewrite keys written by an older one
/// at start-up (version 0 was `str::to_lowercase`).
pub const KEY_VERSION: i64 = 1;

/// Why a name cannot be taken; the text is meant for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    #[error("{0}")]
    Invalid(Invalid),
    #[error(
        "a name cannot contain invisible characters (this one has {0}); use visible letters and digits"
    )]
    Invisible(String),
    #[error(
        "{name:?} is written with compatibility characters (such as fullwidth letters); write it as {plain:?}"
    )]
    NotNormalized { name: String, plain: String },
    #[error("a name cannot contain {0}: use common letters and digits")]
    Unusual(String),
    #[error(
        "a name cannot mix scripts that look alike (such as Latin and Cyrillic or Greek letters); write it in one script"
    )]
    MixedScripts,
}

/// `U+XXXX`, for messages about characters people may not see.
fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// Whether a character shows nothing: default-ignorable code points
/// (joiners, fillers such as U+3164) and spaces.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        // Hangul fillers are letters to Unicode but draw as nothing.
        || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// Checks a name someone wants to take (guest, account or bot): the
/// characters of [`protocol::validate_name`], nothing invisible, already in
/// NFKC form, only characters UTS #39 allows in identifiers, and no mix of
/// scripts that UTS #39 counts as confusable (its "moderately restrictive"
/// level: Latin with one other script such as Han, never Cyrillic or Greek).
pub fn check_new_name(name: &str) -> Result<(), BadName> {
    protocol::validate_name(name).map_err(BadName::Invalid)?;
    if let Some(c) = name.chars().find(|&c| invisible(c)) {
        return Err(BadName::Invisible(code_point(c)));
    }
    if !unicode_normalization::is_nfkc(name) {
        return Err(BadName::NotNormalized {
            name: name.to_string(),
            plain: name.nfkc().collect(),
        });
    }
    if let Some(c) = name.chars().find(|c| !c.identifier_allowed()) {
        return Err(BadName::Unusual(format!("{c:?} ({})", code_point(c))));
    }
    if name.detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive {
        return Err(BadName::MixedScripts);
    }
    Ok(())
}

/// The key under which a name is compared: the UTS #39 skeleton of its NFKC
/// form with full case folding, folded again (the skeleton maps some
/// characters to capitals, e.g. `0` to `O`). Equal keys mean one identity:
/// `Dave`, `dave`, Cyrillic `dаve` and fullwidth `ｄａｖｅ` share one.
pub fn name_key(name: &str) -> String {
    let folded = caseless::default_case_fold_str(&name.nfkc().collect::<String>());
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    caseless::default_case_fold_str(&skeleton)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for ok in [
            "alice",
            "a",
            "Bob_2",
            "x.y-z",
            "élodie",
            "Zoë",
            "李小龙",
            "ivan-петров",
        ] {
            // Latin with Cyrillic is refused even apart, as one name.
            if ok == "ivan-петров" {
                assert_eq!(check_new_name(ok), Err(BadName::MixedScripts));
                continue;
            }
            assert_eq!(check_new_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_new_name("иван"), Ok(()), "one script, Cyrillic");
        assert_eq!(check_new_name("tanaka太郎"), Ok(()), "Latin with Han");
    }

    #[test]
    fn look_alikes_and_invisibles_are_refused() {
        assert_eq!(check_new_name("dаve"), Err(BadName::MixedScripts));
        assert_eq!(
            check_new_name("ｄａｖｅ"),
            Err(BadName::NotNormalized {
                name: "ｄａｖｅ".into(),
                plain: "dave".into()
            })
        );
        assert_eq!(
            check_new_name("dave\u{3164}"),
            Err(BadName::Invisible("U+3164".into()))
        );
        assert_eq!(
            check_new_name("\u{3164}"),
            Err(BadName::Invisible("U+3164".into()))
        );
        assert!(check_new_name("d\u{200B}ave").is_err());
        assert!(check_new_name("dave\u{FFA0}").is_err());
        assert!(check_new_name("ｄ").is_err());
        // ſ (long s) is a letter but not NFKC.
        assert!(check_new_name("ſam").is_err());
        assert!(check_new_name("").is_err());
    }

    #[test]
    fn keys_fold_case_width_and_look_alikes() {
        let dave = name_key("dave");
        for same in ["Dave", "DAVE", "dаve", "ｄａｖｅ", "dave\u{200B}"] {
            assert_eq!(name_key(same), dave, "{same}");
        }
        assert_eq!(name_key("RÔBOT"), name_key("rôbot"));
        assert_eq!(name_key("ZOË"), name_key("zoë"));
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        // Whole-script look-alikes: Cyrillic "аре" and Latin "ape".
        assert_eq!(name_key("аре"), name_key("ape"));
        assert_eq!(name_key("b0b"), name_key("bob"));
        assert_ne!(name_key("alice"), name_key("alicia"));
        assert_ne!(name_key("élodie"), name_key("elodie"));
    }
}
