//! Which address a request comes from, for throttles and the sign-in lockout. Behind a
//! reverse proxy every request arrives from the proxy, so the proxy's `X-Forwarded-For` is
//! believed, but only from the proxies the operator lists (`BERTH_TRUSTED_PROXIES`):
//! anyone else could write any address into that header.

use std::net::IpAddr;

/// An address block, e.g. `10.0.0.0/8` or `::1/128` (a bare address is a block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("\"{text}\" is not an address block; use e.g. 10.0.0.0/8 or ::1")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("\"{text}\": the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    /// A comma-separated list of blocks.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most address of `X-Forwarded-For` (every header line, in order) that is not a
    /// trusted proxy itself. Addresses to the left of that one were written by the client
    /// and are never believed.
    pub fn client_ip<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>().map(canonical) else {
                // Garbage in the chain: stop at the last address we could believe.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("192.0.2.1")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::1/129", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let none = TrustedProxies::default();
        // Untrusted peer: its header is ignored.
        assert_eq!(
            none.client_ip(Some(ip("127.0.0.1")), ["203.0.113.9"]),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            proxies.client_ip(Some(ip("198.51.100.2")), ["203.0.113.9"]),
            Some(ip("198.51.100.2"))
        );
        // Trusted peer: the right-most address that is not a trusted proxy.
        assert_eq!(
            proxies.client_ip(Some(ip("127.0.0.1")), ["1.2.3.4, 203.0.113.9, 10.0.0.5"]),
            Some(ip("203.0.113.9"))
        );
        // Several header lines are one list.
        assert_eq!(
            proxies.client_ip(Some(ip("127.0.0.1")), ["6.6.6.6", "203.0.113.9"]),
            Some(ip("203.0.113.9"))
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.5")), []),
            Some(ip("10.0.0.5"))
        );
        // Garbage: stop at the last believable address.
        assert_eq!(
            proxies.client_ip(Some(ip("127.0.0.1")), ["203.0.113.9, not-an-ip"]),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(proxies.client_ip(None, ["203.0.113.9"]), None);
    }
}
