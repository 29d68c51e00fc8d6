//! Small network helpers shared by the listeners that advertise their address.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// The address of the interface that carries this machine's default route, if any.
///
/// Connecting a UDP socket sends no packet; it only asks the kernel which source address the
/// route to a public (documentation-range) address would use.
pub fn outbound_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The host other machines should use for a listener bound to `bind_host`: the host itself
/// unless it is a wildcard (`0.0.0.0`, `::`, empty), then [`outbound_ip`], then loopback.
pub fn advertised_host(bind_host: &str) -> String {
    let wildcard = bind_host.is_empty()
        || bind_host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
    if wildcard {
        outbound_ip().map_or_else(|| Ipv4Addr::LOCALHOST.to_string(), |ip| ip.to_string())
    } else {
        bind_host.to_owned()
    }
}

/// `host:port`, with IPv6 literals in brackets.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_hosts_are_advertised_as_is() {
        assert_eq!(advertised_host("10.1.2.3"), "10.1.2.3");
        assert_eq!(advertised_host("worker-7.local"), "worker-7.local");
        let wildcard = advertised_host("0.0.0.0");
        assert!(
            wildcard
                .parse::<IpAddr>()
                .is_ok_and(|ip| !ip.is_unspecified())
        );
    }

    #[test]
    fn ipv6_authorities_are_bracketed() {
        assert_eq!(authority("::1", 80), "[::1]:80");
        assert_eq!(authority("[::1]", 80), "[::1]:80");
        assert_eq!(authority("127.0.0.1", 80), "127.0.0.1:80");
    }
}
