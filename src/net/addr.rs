//! Addresses as the transport and the protocol cores hold them: one compact,
//! family-neutral project type.
//!
//! An [`Addr`] is 4 bytes whatever the family. Outside 240.0.0.0/4 it *is* an
//! IPv4 address (so IPv4 needs no table and every IPv4 byte on the wire is
//! the real one); inside 240.0.0.0/4 (reserved for future use by RFC 1112
//! §4, never seen on our wires), except the limited broadcast
//! 255.255.255.255, it is a handle into an [`AddrPlan`]'s table of IPv6
//! addresses. Connections, exchanges and packets keep `Addr`/[`SockAddr`]
//! (4 / 8 bytes), so a `Connection` does not grow when IPv6 arrives; only the
//! network layer turns them into wire addresses (and computes the transport
//! checksums' pseudo-headers from those).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// First handle of the IPv6 range (240.0.0.0).
const V6_BASE: u32 = 0xF000_0000;
/// One past the last IPv6 handle (255.255.255.255 is the broadcast).
const V6_END: u32 = 0xFFFF_FFFF;

/// A host address: IPv4 itself, or a handle to an IPv6 address of a plan.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Addr(u32);

impl Addr {
    /// 0.0.0.0, "no address".
    pub const UNSPECIFIED: Addr = Addr(0);
    /// The IPv4 limited broadcast (255.255.255.255): every neighbour on the
    /// link (RFC 919); IPv6's link-local all-nodes group maps here too.
    pub const BROADCAST: Addr = Addr(u32::MAX);

    /// The 4 bytes as stored (an IPv4 address or an IPv6 handle).
    pub const fn to_bits(self) -> u32 {
        self.0
    }
    /// Rebuild from [`Addr::to_bits`].
    pub const fn from_bits(bits: u32) -> Addr {
        Addr(bits)
    }
    /// The IPv4 address, when this is one (the broadcast included).
    pub fn v4(self) -> Option<Ipv4Addr> {
        (!self.is_v6_handle()).then(|| Ipv4Addr::from(self.0))
    }
    /// True for a handle to an IPv6 address of a plan.
    pub const fn is_v6_handle(self) -> bool {
        self.0 >= V6_BASE && self.0 < V6_END
    }
    /// The IPv6 handle with index `index` (what an [`AddrPlan`] gives its
    /// `index`-th address, and `net::l3` gives node `index`), if in range.
    pub const fn v6_handle(index: u32) -> Option<Addr> {
        if index < V6_END - V6_BASE {
            Some(Addr(V6_BASE + index))
        } else {
            None
        }
    }
    /// The index of an IPv6 handle.
    pub const fn v6_index(self) -> Option<u32> {
        if self.is_v6_handle() {
            Some(self.0 - V6_BASE)
        } else {
            None
        }
    }
    /// True for the limited broadcast.
    pub const fn is_broadcast(self) -> bool {
        self.0 == u32::MAX
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(a: Ipv4Addr) -> Addr {
        Addr(u32::from(a))
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.v4() {
            Some(a) => write!(f, "{a}"),
            None => write!(f, "v6#{}", self.0 - V6_BASE),
        }
    }
}

/// An address and a port: what a UDP datagram or TCP connection is
/// addressed to. 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SockAddr {
    pub addr: Addr,
    pub port: u16,
}

impl SockAddr {
    pub const fn new(addr: Addr, port: u16) -> SockAddr {
        SockAddr { addr, port }
    }
    /// The IPv4 socket address, when the address is IPv4.
    pub fn v4(self) -> Option<std::net::SocketAddrV4> {
        self.addr
            .v4()
            .map(|a| std::net::SocketAddrV4::new(a, self.port))
    }
}

impl From<std::net::SocketAddrV4> for SockAddr {
    fn from(a: std::net::SocketAddrV4) -> SockAddr {
        SockAddr::new(Addr::from(*a.ip()), a.port())
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addr.is_v6_handle() {
            write!(f, "[{}]:{}", self.addr, self.port)
        } else {
            write!(f, "{}:{}", self.addr, self.port)
        }
    }
}

/// Turns [`Addr`]s into wire addresses and back: IPv4 addresses map to
/// themselves; IPv6 addresses are interned in a table (in first-seen order,
/// so the same sequence of calls gives the same handles: deterministic).
#[derive(Debug, Clone, Default)]
pub struct AddrPlan {
    v6: Vec<Ipv6Addr>,
    index: std::collections::BTreeMap<Ipv6Addr, u32>,
}

impl AddrPlan {
    pub fn new() -> Self {
        Self::default()
    }

    /// The handle of `ip` (an IPv6 address is interned on first sight);
    /// `None` when the IPv6 table is full (2^28 − 1 addresses) or for an IPv4
    /// address inside 240.0.0.0/4 other than the broadcast, which no node
    /// has.
    pub fn intern(&mut self, ip: IpAddr) -> Option<Addr> {
        match ip {
            IpAddr::V4(a) => {
                let a = Addr::from(a);
                (!a.is_v6_handle()).then_some(a)
            }
            IpAddr::V6(a) => {
                if let Some(&i) = self.index.get(&a) {
                    return Some(Addr(V6_BASE + i));
                }
                let i = u32::try_from(self.v6.len()).ok()?;
                if i >= V6_END - V6_BASE {
                    return None;
                }
                self.v6.push(a);
                self.index.insert(a, i);
                Some(Addr(V6_BASE + i))
            }
        }
    }

    /// The handle of `ip` if it is known (IPv4 always is).
    pub fn lookup(&self, ip: IpAddr) -> Option<Addr> {
        match ip {
            IpAddr::V4(a) => {
                let a = Addr::from(a);
                (!a.is_v6_handle()).then_some(a)
            }
            IpAddr::V6(a) => self.index.get(&a).map(|&i| Addr(V6_BASE + i)),
        }
    }

    /// The wire address of `a` (`None` for an unknown IPv6 handle).
    pub fn resolve(&self, a: Addr) -> Option<IpAddr> {
        match a.v4() {
            Some(v4) => Some(IpAddr::V4(v4)),
            None => self
                .v6
                .get((a.0 - V6_BASE) as usize)
                .copied()
                .map(IpAddr::V6),
        }
    }

    /// A real socket address in this plan's terms (interning it).
    pub fn intern_sock(&mut self, s: std::net::SocketAddr) -> Option<SockAddr> {
        Some(SockAddr::new(self.intern(s.ip())?, s.port()))
    }

    /// The real socket address of `s`.
    pub fn resolve_sock(&self, s: SockAddr) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new(self.resolve(s.addr)?, s.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_maps_to_itself_and_ipv6_interns_in_order() {
        let mut p = AddrPlan::new();
        let v4 = Ipv4Addr::new(10, 0, 0, 7);
        let a = p.intern(IpAddr::V4(v4)).unwrap();
        assert_eq!(a.v4(), Some(v4));
        assert_eq!(p.resolve(a), Some(IpAddr::V4(v4)));
        let x: Ipv6Addr = "fe80::1".parse().unwrap();
        let y: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let hx = p.intern(IpAddr::V6(x)).unwrap();
        let hy = p.intern(IpAddr::V6(y)).unwrap();
        assert!(hx.is_v6_handle() && hy.is_v6_handle() && hx < hy);
        assert_eq!(
            p.intern(IpAddr::V6(x)),
            Some(hx),
            "same address, same handle"
        );
        assert_eq!(p.resolve(hy), Some(IpAddr::V6(y)));
        assert_eq!(hx.v4(), None);
        assert_eq!(
            Addr::BROADCAST.v4(),
            Some(Ipv4Addr::BROADCAST),
            "the broadcast is IPv4, not a handle"
        );
        // an IPv4 address in 240/4 is no node's: refused, not confused with v6
        assert_eq!(p.intern(IpAddr::V4(Ipv4Addr::new(240, 0, 0, 1))), None);
        assert_eq!(std::mem::size_of::<SockAddr>(), 8);
    }
}
