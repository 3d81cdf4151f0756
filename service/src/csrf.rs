//! The session's CSRF token as pages carry it: under a fresh random mask on every page, so
//! that no two responses repeat the secret's bytes and compressing a page beside text an
//! attacker chose (BREACH) tells nothing about it.

use rand::{rngs::OsRng, RngCore};
use subtle::ConstantTimeEq;

/// `token` masked: hex of a random mask, then hex of the mask XOR the token.
pub fn masked(token: &str) -> String {
    let token = token.as_bytes();
    let mut mask = vec![0u8; token.len()];
    OsRng.fill_bytes(&mut mask);
    let hidden: Vec<u8> = mask.iter().zip(token).map(|(m, t)| m ^ t).collect();
    format!("{}{}", hex::encode(&mask), hex::encode(hidden))
}

/// Whether `provided` (as [`masked`] wrote it) carries the session's `expected` token.
pub fn matches(provided: &str, expected: &str) -> bool {
    let Ok(bytes) = hex::decode(provided) else {
        return false;
    };
    let expected = expected.as_bytes();
    if expected.is_empty() || bytes.len() != 2 * expected.len() {
        return false;
    }
    let (mask, hidden) = bytes.split_at(expected.len());
    let token: Vec<u8> = mask.iter().zip(hidden).map(|(m, h)| m ^ h).collect();
    bool::from(token.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_token_differs_every_time_and_matches_only_its_token() {
        let token = "abcdefghijklmnopqrstuvwxyz012345";
        let (one, two) = (masked(token), masked(token));
        assert_ne!(one, two);
        assert!(!one.contains(token) && !one.contains(&hex::encode(token)));
        assert!(matches(&one, token) && matches(&two, token));
        assert!(!matches(&one, "bbcdefghijklmnopqrstuvwxyz012345"));
        // The bare token, a truncated or altered one, and nothing at all are refused.
        assert!(!matches(token, token));
        assert!(!matches(&one[..one.len() - 2], token));
        let mut altered = one.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert!(!matches(&String::from_utf8(altered).unwrap(), token));
        assert!(!matches("", ""));
        assert!(!matches("zz", "a"));
    }
}
