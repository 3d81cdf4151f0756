//! Times: relative in the text ("3 hours ago"), exact on hover and for screen readers.

use leptos::prelude::*;

/// Renders a Unix-milliseconds time as `<time>`. The relative text is computed against the
/// time the page was rendered on the server, so server and browser agree at hydration.
#[component]
pub fn Time(ms: i64, now: i64) -> impl IntoView {
    let exact = exact_utc(ms);
    view! { <time datetime=exact.clone() title=exact>{relative(ms, now)}</time> }
}

pub fn relative(ms: i64, now: i64) -> String {
    let secs = (now - ms) / 1000;
    if secs <= -60 {
        // In the future (an expiry date).
        let ahead = -secs;
        let (n, unit) = match ahead {
            s if s < 3600 => (s / 60, "minute"),
            s if s < 86_400 => (s / 3600, "hour"),
            s if s < 86_400 * 60 => (s / 86_400, "day"),
            s => (s / (86_400 * 30), "month"),
        };
        return format!("in {n} {unit}{}", if n == 1 { "" } else { "s" });
    }
    let (n, unit) = match secs {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s => (s / (86_400 * 30), "month"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `2026-11-26T20:15:03Z`, from the civil-from-days algorithm (no time zone database needed).
pub fn exact_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `2026-11-26`: the day of a Unix-milliseconds time (UTC), as `<input type="date">` wants.
pub fn iso_date(ms: i64) -> String {
    exact_utc(ms)[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_times_are_utc_iso_8601() {
        assert_eq!(exact_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(exact_utc(1_795_724_103_000), "2026-11-26T20:15:03Z");
        assert_eq!(exact_utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 10_000_000_000;
        assert_eq!(relative(now - 5_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 minute ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(relative(now - 2 * 86_400_000, now), "2 days ago");
        assert_eq!(relative(now + 3 * 86_400_000, now), "in 3 days");
        assert_eq!(iso_date(951_782_400_000), "2000-02-29");
    }
}
