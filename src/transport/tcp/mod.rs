//! A sans-IO TCP model for MQTT over lossy links.
//!
//! Read first: RFC 9293 (TCP), RFC 6298 (retransmission timer), RFC 5681
//! (congestion control), RFC 6582 (NewReno), RFC 9438 (CUBIC), RFC 6928
//! (initial window), RFC 7323 (window scale, timestamps), RFC 2018 (SACK),
//! RFC 6675 (SACK recovery), RFC 8985 (RACK-TLP), RFC 5961 (RST/SYN
//! robustness), RFC 1122 §4.2.3.2 (delayed ACKs); `docs/tcp.md`.
//!
//! * [`segment`]: wire format — [`TcpPacket`] view and [`TcpRepr`].
//! * [`Connection`]: one endpoint; [`Listener`] accepts SYNs for a port.
//! * [`rto`], [`congestion`]: the RFC 6298 estimator; NewReno recovery with
//!   NewReno or CUBIC window growth.
//! * [`sack`]: the SACK scoreboard and RACK-TLP loss detection (RFC 2018,
//!   RFC 6675, RFC 8985), used when both ends negotiated SACK.
//! * [`profile`]: [`Config`] with the `rfc` and `linux-like` profiles.
//!
//! A driver (the simulator, a test) owns the connections, demultiplexes by
//! the 4-tuple, and follows the polling order documented on [`Connection`].

pub mod buffer;
pub mod congestion;
pub mod connection;
pub mod profile;
pub mod rto;
pub mod sack;
pub mod segment;

pub use connection::{
    mss_for_mtu, Connection, Event, InputError, LostReason, Segment, State, Stats, Timer, Transmit,
};
pub use profile::{Config, CongestionAlgorithm, InitialWindow, Profile, RtoFormula};
pub use segment::{
    checksum_ok, fill_checksum, reset_for, SackBlocks, SegmentError, TcpFlags, TcpPacket, TcpRepr,
};

use crate::net::addr::SockAddr;
use crate::sim::SimTime;

/// Passive open for a server port: turns each valid SYN into a fresh
/// [`Connection`] in SYN-RECEIVED (its SYN-ACK ready for `poll_transmit`).
/// Holds no per-client state; the driver keeps the accepted connections
/// keyed by (remote address, remote port).
#[derive(Debug, Clone)]
pub struct Listener {
    config: std::sync::Arc<Config>,
    local: SockAddr,
    path_mtu: u16,
}

/// Why [`Listener::accept`] refused a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The bytes are not a valid TCP segment.
    #[error(transparent)]
    Malformed(#[from] SegmentError),
    /// Wrong destination address or port.
    #[error("segment is not for this listener")]
    NotForUs,
    /// Not a SYN (RFC 9293 §3.10.7.2: RST is ignored, an ACK should get an
    /// RST — see [`reset_for`] — anything else is dropped).
    #[error("not a connection request")]
    NotSyn,
}

impl Listener {
    /// Listen on `local`; accepted connections use `config` and advertise
    /// the MSS of `path_mtu`.
    pub fn new(
        config: impl Into<std::sync::Arc<Config>>,
        local: impl Into<SockAddr>,
        path_mtu: u16,
    ) -> Self {
        Listener {
            config: config.into(),
            local: local.into(),
            path_mtu,
        }
    }
    /// The listening address.
    pub fn local(&self) -> SockAddr {
        self.local
    }
    /// A SYN arrived (its checksum verified by the network layer): a new
    /// connection with initial sequence number `iss` (RFC 9293 §3.10.7.2,
    /// LISTEN, third check).
    pub fn accept(
        &self,
        now: SimTime,
        seg: Segment<'_>,
        iss: u32,
    ) -> Result<Connection, AcceptError> {
        let (r, _) = TcpRepr::parse_unchecked(seg.bytes)?;
        if r.dst_port != self.local.port
            || (seg.dst != self.local.addr
                && self.local.addr != crate::net::addr::Addr::UNSPECIFIED)
        {
            return Err(AcceptError::NotForUs);
        }
        if !r.flags.syn() || r.flags.ack() || r.flags.rst() {
            return Err(AcceptError::NotSyn);
        }
        let mut c = Connection::listen(
            std::sync::Arc::clone(&self.config),
            SockAddr::new(seg.dst, self.local.port),
            self.path_mtu,
            iss,
        );
        c.handle_input(now, seg)
            .map_err(|_| AcceptError::NotForUs)?;
        Ok(c)
    }
}
