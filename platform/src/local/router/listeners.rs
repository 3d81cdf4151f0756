//! The listening TCP sockets a Caddy process holds, from `/proc`.
//!
//! When Caddy 2.6 replaces its servers, `POST /load` answers once the new servers listen
//! but before the old ones have stopped: for a moment both accept. On Linux the old
//! server of a TCP address has a socket of its own (`SO_REUSEPORT`), and a connection
//! queued on it when it closes is reset (unless `net.ipv4.tcp_migrate_req` hands it
//! over). Counting the sockets Caddy holds on an address tells when the old one is gone.
//!
//! (UNIX sockets cannot be counted so: Caddy 2.6 hands one over to the new server as a
//! duplicate descriptor and leaks another duplicate on every reload until its garbage
//! collector closes it.)

use std::{
    collections::HashSet,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

/// `st` of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// For each of `addresses`, how many TCP sockets listening on it process `pid` holds.
pub(super) fn held_by(pid: i32, addresses: &[SocketAddr]) -> Vec<usize> {
    let mut held = HashSet::new();
    if let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.filter_map(Result::ok) {
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            held.extend(inode);
        }
    }
    let sockets = listening_sockets();
    addresses
        .iter()
        .map(|address| {
            sockets
                .iter()
                .filter(|(listening, inode)| listening == address && held.contains(inode))
                .count()
        })
        .collect()
}

/// Whether `net.ipv4.tcp_migrate_req` is on: the kernel then hands the connections queued
/// on a closing `SO_REUSEPORT` socket to another socket of the same address.
pub(super) fn queued_connections_survive_a_reload() -> bool {
    fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").is_ok_and(|v| v.trim() == "1")
}

/// Every listening TCP socket of this network namespace, with its inode.
fn listening_sockets() -> Vec<(SocketAddr, u64)> {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode`
        for line in fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != TCP_LISTEN {
                continue;
            }
            if let (Some(local), Ok(inode)) = (parse_tcp_address(local), inode.parse()) {
                sockets.push((local, inode));
            }
        }
    }
    sockets
}

/// `0100007F:1F40`: the IP as the kernel's 32-bit words, each printed in the host's byte
/// order, and the port in hexadecimal.
fn parse_tcp_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in ip.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_sockets_of_a_process_are_counted_by_address() {
        let me = std::process::id() as i32;
        let one = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addresses = [one.local_addr().unwrap(), other.local_addr().unwrap()];
        assert_eq!(held_by(me, &addresses), [1, 1]);
        drop(other);
        assert_eq!(held_by(me, &addresses), [1, 0]);
        // Not ours: the init process holds none of our sockets.
        assert_eq!(held_by(1, &addresses), [0, 0]);
    }

    #[test]
    fn kernel_addresses_are_read_in_the_host_byte_order() {
        let loopback = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            parse_tcp_address(&format!("{loopback:08X}:1F40")),
            Some("127.0.0.1:8000".parse().unwrap())
        );
        let v6_loopback: String = [0u32, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])]
            .iter()
            .map(|w| format!("{w:08X}"))
            .collect();
        assert_eq!(
            parse_tcp_address(&format!("{v6_loopback}:0050")),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_tcp_address("nonsense"), None);
    }
}
