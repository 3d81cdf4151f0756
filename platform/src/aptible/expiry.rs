//! When an Aptible token expires, from whatever the auth server says about it.
//!
//! Sources disagree on the shape: aptible-auth-ruby's `Token#expires_at` reads an integer
//! (seconds since the epoch), the dashboard's `TokenSuccessResponse` types `expires_at` as
//! an ISO 8601 string, and the oauth2 gem the CLI uses takes `expires_in` (seconds from
//! now) or `expires_at` (either form). The tokens themselves are JWTs with an `exp` claim
//! (the dashboard reads it to decide whether its token is still valid). So, in order:
//! `expires_at` (integer seconds, integer milliseconds, or ISO 8601), `expires_in`, then the
//! JWT's `exp`, read without verifying the signature (it only dates the token; Aptible is
//! what accepts or refuses it).

use base64::Engine as _;
use serde_json::Value;

/// Epoch seconds above this are taken for milliseconds (it is the year 5138 in seconds).
const MILLISECONDS_THRESHOLD: i64 = 100_000_000_000;

pub(crate) fn expires_at_ms(
    expires_at: Option<&Value>,
    expires_in: Option<&Value>,
    token: &str,
    now_ms: i64,
) -> Option<i64> {
    expires_at
        .and_then(absolute_ms)
        .or_else(|| {
            expires_in
                .and_then(integer)
                .filter(|seconds| *seconds > 0)
                .and_then(|seconds| now_ms.checked_add(seconds.checked_mul(1000)?))
        })
        .or_else(|| jwt_exp_ms(token))
}

fn absolute_ms(value: &Value) -> Option<i64> {
    if let Some(number) = integer(value) {
        return epoch_ms(number);
    }
    parse_rfc3339_ms(value.as_str()?)
}

fn epoch_ms(number: i64) -> Option<i64> {
    if number <= 0 {
        None
    } else if number > MILLISECONDS_THRESHOLD {
        Some(number)
    } else {
        number.checked_mul(1000)
    }
}

/// A JSON integer, or a string of digits (Rails sometimes quotes numbers).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|f| f as i64)),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    }
}

/// The `exp` claim of a JWT, unverified.
pub(crate) fn jwt_exp_ms(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    epoch_ms(integer(claims.get("exp")?)?)
}

/// `2024-05-01T12:34:56Z`, with optional fractional seconds and a `±hh:mm` offset (no
/// offset is taken as UTC, as Rails writes UTC times).
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }

    let (clock, offset_seconds) = split_offset(time)?;
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) => (clock, fraction),
        None => (clock, ""),
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next().unwrap_or("0").parse().ok()?;
    if hour > 23 || minute > 59 || second > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1000 + millis)
}

/// The clock part and the offset in seconds east of UTC.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        Some(at) => {
            let (clock, offset) = time.split_at(at);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits = offset[1..].replace(':', "");
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[..2].parse().ok()?;
            let minutes: i64 = digits[2..].parse().ok()?;
            Some((clock, sign * (hours * 3_600 + minutes * 60)))
        }
        None => Some((time, 0)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn iso_8601_times_are_read() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T21:13:20.5-01:00"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29 12:00:00"),
            Some(951_825_600_000)
        );
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14",
            "2023-11-14T25:00:00Z",
            "2023-11-14T10:00:00+2",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn expires_at_wins_in_any_of_its_forms() {
        let expires_in = json!(60);
        for expires_at in [
            json!(1_700_003_600),
            json!("1700003600"),
            json!(1_700_003_600_000_i64),
            json!("2023-11-14T23:13:20Z"),
        ] {
            assert_eq!(
                expires_at_ms(Some(&expires_at), Some(&expires_in), "", NOW),
                Some(1_700_003_600_000),
                "{expires_at}"
            );
        }
    }

    #[test]
    fn expires_in_counts_from_now_then_the_jwt_decides() {
        assert_eq!(
            expires_at_ms(None, Some(&json!(3600)), "", NOW),
            Some(NOW + 3_600_000)
        );
        assert_eq!(
            expires_at_ms(Some(&json!(null)), Some(&json!("3600")), "", NOW),
            Some(NOW + 3_600_000)
        );
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"exp": 1700007200, "scope": "manage"}"#);
        let jwt = format!("eyJhbGciOiJub25lIn0.{claims}.sig");
        assert_eq!(
            expires_at_ms(None, None, &jwt, NOW),
            Some(1_700_007_200_000)
        );
        assert_eq!(expires_at_ms(None, None, "opaque-token", NOW), None);
        assert_eq!(expires_at_ms(None, Some(&json!(-5)), "x.y.z", NOW), None);
    }
}
