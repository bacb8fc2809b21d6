//! Times and days as people read them.
//!
//! The server renders UTC (it does not know the reader's zone); once the page
//! runs in the browser (`local`), the same functions give the reader's local
//! time. The hydrating render uses UTC too, so it matches the server's HTML.

use super::i18n::{K, Lang};

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Day {
    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn ordinal(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// 0 = Monday.
    pub fn weekday(self) -> usize {
        // 1970-01-01 was a Thursday.
        (self.ordinal() + 3).rem_euclid(7) as usize
    }
}

/// The UTC day of an RFC 3339 timestamp.
fn utc_day(ts: &str) -> Option<Day> {
    let year = ts.get(0..4)?.parse().ok()?;
    let month = ts.get(5..7)?.parse().ok()?;
    let day = ts.get(8..10)?.parse().ok()?;
    Some(Day { year, month, day })
}

/// The day of a timestamp: the reader's local day once `local`, else UTC.
pub fn day(ts: &str, local: bool) -> Option<Day> {
    #[cfg(feature = "hydrate")]
    if local {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(ts));
        if !d.get_time().is_nan() {
            return Some(Day {
                year: d.get_full_year() as i32,
                month: d.get_month() + 1,
                day: d.get_date(),
            });
        }
    }
    let _ = local;
    utc_day(ts)
}

/// Today in the reader's zone (browser only).
#[cfg(feature = "hydrate")]
pub fn today() -> Option<Day> {
    let d = js_sys::Date::new_0();
    Some(Day {
        year: d.get_full_year() as i32,
        month: d.get_month() + 1,
        day: d.get_date(),
    })
}

/// Today in the reader's zone once `local` (browser only); `None` otherwise.
pub fn today_if(local: bool) -> Option<Day> {
    #[cfg(feature = "hydrate")]
    if local {
        return today();
    }
    let _ = local;
    None
}

/// A day separator's text: "Today", "Yesterday", or "Friday 21 November 2026".
/// `today` is given only in the browser, so the server never says "Today"
/// about a day that is not the reader's.
pub fn day_label(d: Day, today: Option<Day>, lang: Lang) -> String {
    if let Some(t) = today {
        match t.ordinal() - d.ordinal() {
            0 => return lang.t(K::Today).to_string(),
            1 => return lang.t(K::Yesterday).to_string(),
            _ => {}
        }
    }
    let weekday = lang.weekdays()[d.weekday()];
    let month = lang.months()[(d.month.clamp(1, 12) - 1) as usize];
    match lang {
        Lang::En => format!("{weekday} {} {month} {}", d.day, d.year),
        Lang::Fr => {
            let n = if d.day == 1 {
                "1er".to_string()
            } else {
                d.day.to_string()
            };
            format!("{weekday} {n} {month} {}", d.year)
        }
    }
}

/// `HH:MM` of an RFC 3339 timestamp: in the reader's local time once the
/// page runs in the browser, in UTC in the server's render.
pub fn clock(ts: &str, local: bool) -> String {
    #[cfg(feature = "hydrate")]
    if local {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(ts));
        if !d.get_time().is_nan() {
            return format!("{:02}:{:02}", d.get_hours(), d.get_minutes());
        }
    }
    let _ = local;
    ts.get(11..16).unwrap_or("").to_string()
}

/// A readable full date for a tooltip.
pub fn full(ts: &str) -> String {
    ts.get(0..19).unwrap_or(ts).replace('T', " ") + " UTC"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days() {
        let d = utc_day("2026-11-21T10:15:30.123Z").unwrap();
        assert_eq!(
            d,
            Day {
                year: 2026,
                month: 11,
                day: 21
            }
        );
        assert_eq!(d.weekday(), 5); // a Saturday
        assert_eq!(
            Day {
                year: 1970,
                month: 1,
                day: 1
            }
            .ordinal(),
            0
        );
        assert_eq!(day_label(d, None, Lang::En), "Saturday 21 November 2026");
        let first = Day {
            year: 2024,
            month: 3,
            day: 1,
        };
        assert_eq!(day_label(first, None, Lang::Fr), "vendredi 1er mars 2024");
        let next = Day {
            year: 2026,
            month: 11,
            day: 22,
        };
        assert_eq!(day_label(d, Some(next), Lang::En), "Yesterday");
        assert_eq!(day_label(next, Some(next), Lang::Fr), "Aujourd’hui");
        // Across a month and a leap day.
        let feb29 = Day {
            year: 2024,
            month: 2,
            day: 29,
        };
        assert_eq!(first.ordinal() - feb29.ordinal(), 1);
    }

    #[test]
    fn clock_in_utc_on_the_server() {
        assert_eq!(clock("2026-11-21T10:15:30.123Z", false), "10:15");
        assert_eq!(full("2026-11-21T10:15:30.123Z"), "2026-11-21 10:15:30 UTC");
    }
}
