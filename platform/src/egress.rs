//! The egress guard: every outbound connection Berth makes on a user's behalf (registry API
//! calls, token services, git over http(s) and ssh) goes through here, so that a URL typed
//! by a user, or named by a remote server (a token realm, a redirect), cannot make Berth
//! talk to its own network: loopback (Berth itself, PostgreSQL), link-local (cloud metadata
//! at 169.254.169.254), private, unique-local, CGNAT, multicast and the like.
//!
//! The rule: a host name is resolved, and each address it resolves to is checked; only
//! public addresses are contacted, unless the operator listed the host
//! (`BERTH_EGRESS_ALLOW`, and the hosts of `BERTH_INSECURE_REGISTRIES`). The check is made
//! on the address that is actually connected to:
//!
//! - for reqwest, by [`Egress::resolver`] (a `reqwest::dns::Resolve` that drops refused
//!   addresses, so a DNS answer that changes between a check and the connection, "DNS
//!   rebinding", cannot slip through), plus [`Egress::check_url`] for URLs whose host is an
//!   address (they bypass the resolver);
//! - for git and ssh, by [`Egress::resolve`], whose checked address git is then pinned to.
//!
//! Git repositories on this server (local paths, `file://`) are a separate permission:
//! only under the directories the operator lists in `BERTH_GIT_LOCAL_ROOTS`.

use domain::RegistryHost;
use reqwest::Url;
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
};

/// Where Berth may connect, and which local repositories it may read. Cheap to clone.
///
/// The default allows public addresses only and no local repositories.
#[derive(Clone, Debug, Default)]
pub struct Egress {
    policy: Arc<Policy>,
}

#[derive(Debug, Default)]
struct Policy {
    hosts: Vec<AllowedHost>,
    nets: Vec<Cidr>,
    git_local_roots: Vec<PathBuf>,
}

/// A host (name or address) the operator allows, on one port or on any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// Lower case; an IPv6 address without brackets.
    host: String,
    port: Option<u16>,
}

/// An address range the operator allows, whatever name leads there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// One entry of `BERTH_EGRESS_ALLOW`: `host`, `host:port`, `[v6]:port`, an address, or a
/// CIDR range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    Host { host: String, port: Option<u16> },
    Net(Cidr),
}

impl AllowEntry {
    pub fn parse(input: &str) -> Result<Self, String> {
        let entry = input.trim();
        if entry.is_empty() {
            return Err("an empty entry".into());
        }
        if let Some((address, prefix)) = entry.split_once('/') {
            let network: IpAddr = address
                .parse()
                .map_err(|_| format!("{entry}: {address} is not an IP address"))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{entry}: the prefix length must be 0 to {max}"))?;
            return Ok(Self::Net(Cidr {
                network: canonical(network),
                prefix,
            }));
        }
        // A bare address allows that address, whatever name leads there.
        if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
            if !entry.contains("]:") {
                let ip = canonical(ip);
                return Ok(Self::Net(Cidr {
                    network: ip,
                    prefix: if ip.is_ipv4() { 32 } else { 128 },
                }));
            }
        }
        let (host, port) = split_host_port(entry)
            .ok_or_else(|| format!("{entry}: use host, host:port, an address or a CIDR range"))?;
        let valid_name = !host.is_empty()
            && !host.starts_with(['-', '.'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !valid_name {
            return Err(format!("{entry}: \"{host}\" is not a host name"));
        }
        Ok(Self::Host {
            host: normalize_host(host),
            port,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        // An unbracketed IPv6 address has several ':' and no port.
        Some((host, _)) if host.contains(':') => Some((authority, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn normalize_host(host: &str) -> String {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
    match host.parse::<IpAddr>() {
        Ok(ip) => canonical(ip).to_string(),
        Err(_) => host,
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why an address is not contacted: "a private address", "a loopback address", ….
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Loopback,
    LinkLocal,
    Private,
    UniqueLocal,
    SharedAddressSpace,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
}

impl Forbidden {
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::Loopback => ("a loopback address", "this server's own services"),
            Self::LinkLocal => (
                "a link-local address",
                "link-local addresses (such as cloud metadata services)",
            ),
            Self::Private => ("a private address", "private networks"),
            Self::UniqueLocal => ("a unique-local address", "private networks"),
            Self::SharedAddressSpace => ("a shared (CGNAT) address", "carrier-grade NAT networks"),
            Self::Unspecified => ("an unspecified address", "unspecified addresses"),
            Self::Multicast => ("a multicast address", "multicast addresses"),
            Self::Broadcast => ("a broadcast address", "broadcast addresses"),
            Self::Reserved => ("a reserved address", "reserved addresses"),
        }
    }
}

/// Whether `ip` is one Berth does not contact unless the operator allows it, and why.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, _, _] = ip.octets();
    Some(if ip.is_loopback() {
        Forbidden::Loopback
    } else if ip.is_link_local() {
        Forbidden::LinkLocal
    } else if ip.is_private() {
        Forbidden::Private
    } else if a == 100 && (64..128).contains(&b) {
        Forbidden::SharedAddressSpace
    } else if a == 0 {
        Forbidden::Unspecified
    } else if ip.is_broadcast() {
        Forbidden::Broadcast
    } else if ip.is_multicast() {
        Forbidden::Multicast
    } else if a >= 240 || (a == 192 && b == 0 && ip.octets()[2] == 0) {
        // 240/4 (future use) and 192.0.0.0/24 (protocol assignments).
        Forbidden::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let segments = ip.segments();
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    if ip.is_unspecified() {
        return Some(Forbidden::Unspecified);
    }
    // Forms that carry an IPv4 address: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    // NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::): judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let o = ip.octets();
    let embedded = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    if o[..12] == [0; 12] {
        return classify_v4(embedded(12)).or(Some(Forbidden::Reserved));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(12));
    }
    if segments[0] == 0x2002 {
        return classify_v4(embedded(2));
    }
    if segments[0] & 0xffc0 == 0xfe80 {
        Some(Forbidden::LinkLocal)
    } else if segments[0] & 0xffc0 == 0xfec0 {
        // Site-local (deprecated), private in effect.
        Some(Forbidden::Private)
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some(Forbidden::UniqueLocal)
    } else if ip.is_multicast() {
        Some(Forbidden::Multicast)
    } else {
        None
    }
}

/// Why Berth did not contact a host: a refusal by the guard, or a name that does not
/// resolve. Its message is for the person who typed the URL (and names the setting that
/// would allow it); it never says anything about the address beyond its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressError {
    Refused {
        host: String,
        address: IpAddr,
        why: Forbidden,
    },
    /// The host is allowed only on other ports.
    WrongPort {
        host: String,
        port: u16,
    },
    Unresolvable {
        host: String,
    },
}

impl fmt::Display for EgressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { host, address, why } => {
                let (kind, plural) = why.describe();
                let host = host.trim_matches(['[', ']']);
                if host.parse::<IpAddr>().is_ok() {
                    write!(f, "{host} is {kind}")?;
                } else {
                    write!(f, "{host} resolves to {kind} ({address})")?;
                }
                write!(
                    f,
                    "; Berth does not contact {plural} unless the operator allows the host in \
                     BERTH_EGRESS_ALLOW."
                )
            }
            Self::WrongPort { host, port } => write!(
                f,
                "{host} is allowed by the operator on other ports only, not on {port}; the \
                 operator can allow {host}:{port} in BERTH_EGRESS_ALLOW."
            ),
            Self::Unresolvable { host } => write!(f, "The host name {host} does not resolve."),
        }
    }
}

impl std::error::Error for EgressError {}

impl Egress {
    /// Public addresses, plus what `allow` lists.
    pub fn new(allow: Vec<AllowEntry>) -> Self {
        let mut policy = Policy::default();
        for entry in allow {
            match entry {
                AllowEntry::Host { host, port } => policy.hosts.push(AllowedHost { host, port }),
                AllowEntry::Net(net) => policy.nets.push(net),
            }
        }
        Self {
            policy: Arc::new(policy),
        }
    }

    /// Also allows the registries the operator listed as insecure, each on its own port
    /// (a registry listed as `127.0.0.1:5000` does not open the rest of 127.0.0.1).
    pub fn allowing_registries(self, registries: &[RegistryHost]) -> Self {
        let mut policy = self.cloned_policy();
        for registry in registries {
            let (host, port) =
                split_host_port(registry.api_host()).unwrap_or((registry.api_host(), None));
            let allowed = AllowedHost {
                host: normalize_host(host),
                port,
            };
            if !policy.hosts.contains(&allowed) {
                policy.hosts.push(allowed);
            }
        }
        Self {
            policy: Arc::new(policy),
        }
    }

    /// The directories under which git may read repositories on this server
    /// (`BERTH_GIT_LOCAL_ROOTS`); none by default.
    pub fn with_git_local_roots(self, roots: Vec<PathBuf>) -> Self {
        let mut policy = self.cloned_policy();
        policy.git_local_roots = roots;
        Self {
            policy: Arc::new(policy),
        }
    }

    fn cloned_policy(&self) -> Policy {
        Policy {
            hosts: self.policy.hosts.clone(),
            nets: self.policy.nets.clone(),
            git_local_roots: self.policy.git_local_roots.clone(),
        }
    }

    pub fn git_local_roots(&self) -> &[PathBuf] {
        &self.policy.git_local_roots
    }

    /// Whether `path` (absolute) is inside one of the listed roots, after following
    /// symbolic links. `Err` holds the message for the `git.url` field.
    pub fn check_git_local_path(&self, path: &Path) -> Result<PathBuf, String> {
        let roots = self.git_local_roots();
        if roots.is_empty() {
            return Err(format!(
                "Repositories on this server ({}) are not allowed: the operator lists the \
                 directories Berth may read them from in BERTH_GIT_LOCAL_ROOTS, and lists none. \
                 Use the repository's https:// or ssh:// URL.",
                path.display()
            ));
        }
        let listed = || {
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let relative_parts = path.components().any(|c| {
            !matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        if !path.is_absolute() || relative_parts {
            return Err(format!(
                "{} is not an absolute path without \"..\".",
                path.display()
            ));
        }
        // A path that does not exist is judged by its deepest existing ancestor: under a
        // root, git then says it is not a repository; elsewhere it is refused like any
        // other path, so that the answer says nothing about the rest of the file system.
        let resolved = path.ancestors().find_map(|ancestor| {
            let found = ancestor.canonicalize().ok()?;
            Some(found.join(path.strip_prefix(ancestor).ok()?))
        });
        let inside = resolved.as_ref().is_some_and(|resolved| {
            roots.iter().any(|root| {
                root.canonicalize()
                    .is_ok_and(|root| resolved.starts_with(root))
            })
        });
        match resolved {
            Some(resolved) if inside => Ok(resolved),
            _ => Err(format!(
                "{} is not a repository under the directories the operator allows in \
                 BERTH_GIT_LOCAL_ROOTS ({}).",
                path.display(),
                listed()
            )),
        }
    }

    /// Whether a connection to `address` reached through `host` (a name, or the address
    /// itself) on `port` is allowed.
    pub fn check_address(
        &self,
        host: &str,
        port: Option<u16>,
        address: IpAddr,
    ) -> Result<(), EgressError> {
        let address = canonical(address);
        let Some(why) = classify(address) else {
            return Ok(());
        };
        if self.policy.nets.iter().any(|net| net.contains(address)) {
            return Ok(());
        }
        let host_normalized = normalize_host(host);
        let listed = self.policy.hosts.iter().any(|allowed| {
            allowed.host == host_normalized
                && (allowed.port.is_none() || port.is_none() || allowed.port == port)
        });
        if listed {
            return Ok(());
        }
        Err(EgressError::Refused {
            host: host.to_owned(),
            address,
            why,
        })
    }

    /// The check made before a request is sent: an address in the URL is checked here (it
    /// never reaches the resolver); a name listed only with other ports is refused here
    /// (the resolver does not see ports). Names are otherwise checked by the resolver.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        let port = url.port_or_known_default();
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_address(&ip.to_string(), port, IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_address(&ip.to_string(), port, IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => self.check_name_port(name, port),
            None => Err(EgressError::Unresolvable {
                host: url.as_str().to_owned(),
            }),
        }
    }

    fn check_name_port(&self, name: &str, port: Option<u16>) -> Result<(), EgressError> {
        let name = normalize_host(name);
        let entries: Vec<&AllowedHost> = self
            .policy
            .hosts
            .iter()
            .filter(|allowed| allowed.host == name)
            .collect();
        let other_ports_only = !entries.is_empty()
            && entries
                .iter()
                .all(|allowed| allowed.port.is_some() && allowed.port != port);
        match port {
            Some(port) if other_ports_only => Err(EgressError::WrongPort { host: name, port }),
            _ => Ok(()),
        }
    }

    /// Resolves `host` and keeps the addresses that may be contacted on `port`; an error
    /// when there are none (naming the first refused address).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_matches(['[', ']']);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_address(bare, Some(port), ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_name_port(bare, Some(port))?;
        let unresolvable = || EgressError::Unresolvable {
            host: bare.to_owned(),
        };
        let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| unresolvable())?
            .collect();
        self.filter(bare, Some(port), found)
    }

    fn filter(
        &self,
        host: &str,
        port: Option<u16>,
        found: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        if found.is_empty() {
            return Err(EgressError::Unresolvable {
                host: host.to_owned(),
            });
        }
        let mut first_refusal = None;
        let mut allowed = Vec::new();
        for address in found {
            match self.check_address(host, port, address.ip()) {
                Ok(()) => allowed.push(address),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match first_refusal {
            // Every address of a name must pass: a name that resolves to a public and a
            // private address is refused rather than tried address by address.
            Some(refusal) => Err(refusal),
            None => Ok(allowed),
        }
    }

    /// A DNS resolver for reqwest that applies this guard to every address it returns.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            egress: self.clone(),
        }
    }
}

/// The resolver [`Egress::resolver`] returns.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    egress: Egress,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in (see `Resolve`); the port was checked
            // by `check_url` before the request was sent.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| EgressError::Unresolvable { host: host.clone() })?
                .collect();
            let allowed = egress.filter(&host, None, found)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Finds an [`EgressError`] in an error's chain of sources (a refusal by the resolver
/// reaches callers wrapped in reqwest's and hyper's errors).
pub fn find_refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(refusal) = current.downcast_ref::<EgressError>() {
            return Some(refusal);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_classified() {
        for (address, why) in [
            ("127.0.0.1", Forbidden::Loopback),
            ("127.8.9.10", Forbidden::Loopback),
            ("169.254.169.254", Forbidden::LinkLocal),
            ("10.1.2.3", Forbidden::Private),
            ("172.16.0.1", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("100.64.0.1", Forbidden::SharedAddressSpace),
            ("100.127.255.254", Forbidden::SharedAddressSpace),
            ("0.0.0.0", Forbidden::Unspecified),
            ("0.1.2.3", Forbidden::Unspecified),
            ("224.0.0.1", Forbidden::Multicast),
            ("255.255.255.255", Forbidden::Broadcast),
            ("240.0.0.1", Forbidden::Reserved),
            ("::1", Forbidden::Loopback),
            ("::", Forbidden::Unspecified),
            ("fe80::1", Forbidden::LinkLocal),
            ("febf::1", Forbidden::LinkLocal),
            ("fc00::1", Forbidden::UniqueLocal),
            ("fd12:3456::1", Forbidden::UniqueLocal),
            ("ff02::1", Forbidden::Multicast),
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:169.254.169.254", Forbidden::LinkLocal),
            ("::ffff:10.0.0.1", Forbidden::Private),
            ("::127.0.0.1", Forbidden::Loopback),
            ("::10.0.0.1", Forbidden::Private),
            ("64:ff9b::a9fe:a9fe", Forbidden::LinkLocal),
            ("2002:7f00:1::", Forbidden::Loopback),
        ] {
            assert_eq!(classify(ip(address)), Some(why), "{address}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn allow_entries_parse() {
        assert_eq!(
            AllowEntry::parse("registry.internal:5000").unwrap(),
            AllowEntry::Host {
                host: "registry.internal".into(),
                port: Some(5000)
            }
        );
        assert_eq!(
            AllowEntry::parse("Git.Internal").unwrap(),
            AllowEntry::Host {
                host: "git.internal".into(),
                port: None
            }
        );
        assert_eq!(
            AllowEntry::parse("[::1]:5000").unwrap(),
            AllowEntry::Host {
                host: "::1".into(),
                port: Some(5000)
            }
        );
        assert!(matches!(
            AllowEntry::parse("10.0.0.0/8").unwrap(),
            AllowEntry::Net(_)
        ));
        assert!(matches!(
            AllowEntry::parse("10.1.2.3").unwrap(),
            AllowEntry::Net(_)
        ));
        for bad in ["", "10.0.0.0/33", "x/8", "host:port", "-rf", "a b"] {
            assert!(AllowEntry::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listed_hosts_and_ranges_are_allowed_and_nothing_else() {
        let egress = Egress::new(vec![
            AllowEntry::parse("registry.internal:5000").unwrap(),
            AllowEntry::parse("10.20.0.0/16").unwrap(),
        ])
        .allowing_registries(&[RegistryHost::parse("127.0.0.1:5000").unwrap()]);
        // Public: always.
        assert!(egress
            .check_address("example.com", None, ip("93.184.216.34"))
            .is_ok());
        // A listed registry on its own port, not on another.
        assert!(egress
            .check_address("127.0.0.1", Some(5000), ip("127.0.0.1"))
            .is_ok());
        assert!(egress
            .check_address("127.0.0.1", Some(5432), ip("127.0.0.1"))
            .is_err());
        // A name that resolves to a listed address does not borrow its listing.
        assert!(egress
            .check_address("evil.example", None, ip("127.0.0.1"))
            .is_err());
        // A range: any name.
        assert!(egress
            .check_address("db.corp", Some(5432), ip("10.20.3.4"))
            .is_ok());
        assert!(egress
            .check_address("db.corp", Some(5432), ip("::ffff:10.20.3.4"))
            .is_ok());
        assert!(egress
            .check_address("db.corp", Some(5432), ip("10.21.3.4"))
            .is_err());
        // A listed name, on its port only (checked on the URL).
        let url = Url::parse("https://registry.internal:5000/v2/").unwrap();
        assert!(egress.check_url(&url).is_ok());
        let url = Url::parse("https://registry.internal/v2/").unwrap();
        assert!(matches!(
            egress.check_url(&url),
            Err(EgressError::WrongPort { port: 443, .. })
        ));
        let refusal = egress
            .check_address("meta.example", Some(80), ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "meta.example resolves to a link-local address (169.254.169.254); Berth does not \
             contact link-local addresses (such as cloud metadata services) unless the \
             operator allows the host in BERTH_EGRESS_ALLOW."
        );
    }

    #[test]
    fn address_urls_are_checked_before_any_resolver() {
        let egress = Egress::default();
        for url in [
            "http://127.0.0.1:5432/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://0.0.0.0:3000/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(egress.check_url(&url), Err(EgressError::Refused { .. })),
                "{url}"
            );
        }
        let message = egress
            .check_url(&Url::parse("http://10.1.2.3/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "10.1.2.3 is a private address; Berth does not contact private networks"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn names_are_resolved_then_checked() {
        let egress = Egress::default();
        let refusal = egress.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(
                refusal,
                EgressError::Refused {
                    why: Forbidden::Loopback,
                    ..
                }
            ),
            "{refusal:?}"
        );
        let allowed = Egress::new(vec![AllowEntry::parse("localhost").unwrap()]);
        let addresses = allowed.resolve("localhost", 8080).await.unwrap();
        assert!(addresses
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert!(matches!(
            egress.resolve("no-such-host.invalid", 443).await,
            Err(EgressError::Unresolvable { .. })
        ));
    }

    #[test]
    fn local_repositories_need_a_listed_root() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("app.git");
        std::fs::create_dir(&repo).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let none = Egress::default();
        let message = none.check_git_local_path(&repo).unwrap_err();
        assert!(message.contains("BERTH_GIT_LOCAL_ROOTS"), "{message}");
        let listed = Egress::default().with_git_local_roots(vec![root.path().to_owned()]);
        assert!(listed.check_git_local_path(&repo).is_ok());
        assert!(listed.check_git_local_path(outside.path()).is_err());
        // A symbolic link under the root that leads out of it is judged by its target.
        let link = root.path().join("link");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        assert!(listed.check_git_local_path(&link).is_err());
        assert!(listed
            .check_git_local_path(&root.path().join("app.git/../../etc"))
            .is_err());
        assert!(listed
            .check_git_local_path(&root.path().join("missing/../../etc"))
            .is_err());
        // A missing repository under the root is for git to report as missing.
        assert!(listed
            .check_git_local_path(&root.path().join("missing.git"))
            .is_ok());
    }
}
