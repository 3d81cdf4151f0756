//! Which port a new release gets as `PORT`.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, TcpListener},
    ops::RangeInclusive,
};

/// A port of `range` that no live release holds and that is free on 127.0.0.1 now:
/// `preferred` when it qualifies (a release keeps its URL across Berth restarts), else the
/// lowest that does. Another program may still take it before the release binds it; the
/// health check then fails and the deploy says so.
pub(crate) fn choose(
    range: &RangeInclusive<u16>,
    preferred: Option<u16>,
    held: &HashSet<u16>,
) -> Option<u16> {
    let usable = |port: &u16| range.contains(port) && !held.contains(port) && is_free(*port);
    preferred
        .filter(usable)
        .or_else(|| range.clone().find(usable))
}

/// Binding is the only reliable test: the port may be held by a process Berth knows
/// nothing of. (std sets SO_REUSEADDR, so a port in TIME_WAIT counts as free, as it is for
/// the release.)
fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_given_port_and_skips_held_and_busy_ones() {
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let range = busy_port..=busy_port.saturating_add(3);

        assert_ne!(
            choose(&range, Some(busy_port), &HashSet::new()),
            Some(busy_port)
        );

        let free = choose(&range, None, &HashSet::new()).expect("a free port");
        assert_ne!(free, busy_port);
        assert_eq!(choose(&range, Some(free), &HashSet::new()), Some(free));

        let held: HashSet<u16> = [free].into();
        let other = choose(&range, Some(free), &held);
        assert!(other.is_some() && other != Some(free) && other != Some(busy_port));

        assert_eq!(
            choose(&(busy_port..=busy_port), None, &HashSet::new()),
            None
        );
    }
}
