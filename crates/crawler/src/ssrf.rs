//! The SSRF guard: no request reaches loopback, private, link-local
//! (169.254.169.254 included), CGNAT, multicast, unspecified, broadcast,
//! documentation or other special ranges, in IPv4 or IPv6 form
//! (IPv4-mapped and 6to4 addresses included). Names are resolved by our own
//! resolver, which refuses a name if any address it resolves to is refused,
//! so DNS rebinding between check and connect is impossible.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the guard allows.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Allow every address (tests, intranet crawls).
    pub allow_private: bool,
    /// Ranges allowed even though they are refused by default.
    pub allow: Vec<IpNet>,
}

/// The resolver error that marks a refused address.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to refused address {addr}")]
pub struct Blocked {
    /// The name.
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
}

impl Guard {
    /// Is `ip` allowed?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || self.allow.iter().any(|n| n.contains(&ip)) || is_public(ip)
    }
}

/// True for globally routable unicast addresses.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            // 6to4 (2002::/16) embeds an IPv4 address.
            if seg[0] == 0x2002 {
                let v4 = Ipv4Addr::new(
                    (seg[1] >> 8) as u8,
                    seg[1] as u8,
                    (seg[2] >> 8) as u8,
                    seg[2] as u8,
                );
                return is_public_v4(v4);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0064 && seg[1] == 0xff9b) // NAT64
                || seg[..4] == [0, 0, 0, 0] && seg[4] == 0xffff && seg[5] == 0 // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
                || (seg[0] == 0x2001 && seg[1] < 0x0200) // 2001::/23 special-purpose
                || (seg[0] == 0x0100 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0) // discard 100::/64
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// A resolver that refuses names resolving to refused addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    /// The guard.
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let looked_up = tokio::net::lookup_host((host.clone(), 0)).await;
            let addrs: Vec<SocketAddr> = match looked_up {
                Ok(addrs) => addrs.collect(),
                Err(source) => {
                    return Err(Box::new(Unresolved { host, source })
                        as Box<dyn std::error::Error + Send + Sync>)
                }
            };
            if let Some(bad) = addrs.iter().find(|a| !guard.allows(a.ip())) {
                return Err(Box::new(Blocked {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A host name that does not resolve.
#[derive(Debug)]
pub struct Unresolved {
    /// The name.
    pub host: String,
    /// The resolver's error.
    pub source: std::io::Error,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot resolve {}: {}", self.host, self.source)
    }
}

impl std::error::Error for Unresolved {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The [`Unresolved`] behind a client error, if any.
pub fn find_unresolved<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Unresolved> {
    let mut cause = Some(err);
    while let Some(c) = cause {
        if let Some(u) = c.downcast_ref::<Unresolved>() {
            return Some(u);
        }
        cause = c.source();
    }
    None
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_url(guard: &Guard, url: &url::Url) -> Result<(), IpAddr> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if guard.allows(ip) {
        Ok(())
    } else {
        Err(ip)
    }
}

/// Finds a [`Blocked`] in an error's source chain.
pub fn find_blocked<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return Some(b);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        !Guard::default().allows(s.parse().unwrap())
    }

    #[test]
    fn refuses_every_special_range() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.9",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "2002:7f00:1::",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:8.8.8.8",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn literal_hosts_in_every_spelling() {
        let g = Guard::default();
        for u in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
        ] {
            let url = url::Url::parse(u).unwrap();
            assert!(check_url(&g, &url).is_err(), "{u}");
        }
        assert!(check_url(&g, &url::Url::parse("http://example.com/").unwrap()).is_ok());
    }

    #[test]
    fn switches_and_allowlists() {
        let open = Guard {
            allow_private: true,
            allow: vec![],
        };
        assert!(open.allows("127.0.0.1".parse().unwrap()));
        let listed = Guard {
            allow_private: false,
            allow: vec!["127.0.0.1/32".parse().unwrap()],
        };
        assert!(listed.allows("127.0.0.1".parse().unwrap()));
        assert!(!listed.allows("127.0.0.2".parse().unwrap()));
    }
}
