//! `connections.csv`: one row per TCP connection endpoint (docs/metrics.md).
//!
//! Both endpoints of one connection share its `connection` id (the row
//! number of the active opener, which also appears in `packets.csv`).
//! `spurious_retransmissions` of an endpoint is the number of its data
//! segments the peer received although it already had every byte of them
//! (wholly or partly below its RCV.NXT): retransmissions that were not
//! needed. It is empty when the peer is not simulated.

use crate::metrics::record::{csv_field, fmt_ms};
use crate::sim::{Opt64, SimTime};
use crate::transport::tcp::{LostReason, Stats};
use std::io::{self, Write};

/// How a connection ended, for `connections.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnOutcome {
    /// Still open when the run ended.
    Open,
    /// Graceful close (FIN exchange, TIME_WAIT or LAST_ACK done).
    Closed,
    /// The peer reset it.
    Reset,
    /// Given up (handshake, retransmission limit, user timeout, probes).
    Lost(LostReason),
    /// Its node crashed.
    NodeCrash,
}

impl ConnOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnOutcome::Open => "open",
            ConnOutcome::Closed => "closed",
            ConnOutcome::Reset => "reset",
            ConnOutcome::Lost(LostReason::HandshakeTimeout) => "lost_handshake",
            ConnOutcome::Lost(LostReason::RetransmitLimit) => "lost_retransmit_limit",
            ConnOutcome::Lost(LostReason::UserTimeout) => "lost_user_timeout",
            ConnOutcome::Lost(LostReason::ProbeLimit) => "lost_probe_limit",
            ConnOutcome::NodeCrash => "node_crash",
        }
    }
    /// A failure: the connection ended without a graceful close while its
    /// node was up (counted as `tcp_connection_failures`).
    pub fn is_failure(self) -> bool {
        matches!(self, ConnOutcome::Reset | ConnOutcome::Lost(_))
    }
}

impl ConnInfo {
    /// End the record with `outcome` at `now` unless it already ended;
    /// true when this call ended it.
    pub fn end(&mut self, now: SimTime, outcome: ConnOutcome) -> bool {
        let open = self.outcome == ConnOutcome::Open;
        if open {
            self.outcome = outcome;
            self.ended = now.into();
        }
        open
    }
}

/// One endpoint's row of `connections.csv`.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    pub info: ConnInfo,
    /// The connection's counters when it ended (or when the run did).
    pub stats: Stats,
}

/// All of an endpoint's row but its counters: what the run keeps while the
/// connection is open (the counters live in the connection until it ends,
/// so an open connection's row costs 80 bytes, not 144).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Shared by both endpoints: the record index of the active opener.
    pub conn: u32,
    pub flow: u32,
    /// True for the active opener.
    pub client: bool,
    pub node: u32,
    pub peer: u32,
    pub local_port: u16,
    pub remote_port: u16,
    pub opened: SimTime,
    /// When the handshake completed (none: never).
    pub established: Opt64,
    /// When the connection ended (none: open at the end of the run).
    pub ended: Opt64,
    pub outcome: ConnOutcome,
    pub max_cwnd: u32,
    /// Smoothed RTT, ns (none: no sample).
    pub srtt_ns: Opt64,
    /// Record index of the other endpoint, when it is simulated.
    pub peer_rec: Option<u32>,
    /// When the security overlay's handshake completed on this endpoint
    /// (TLS Finished, WebSocket upgrade answered); `None` without one.
    pub secured: Opt64,
}

/// Header of `connections.csv`.
pub const CONNECTIONS_HEADER: &str = "run_id,connection,flow,side,node,peer,local_port,remote_port,opened_ms,established_ms,handshake_ms,ended_ms,outcome,failed,segments_sent,retransmissions,rto_expiries,fast_retransmits,spurious_retransmissions,dup_acks_received,max_cwnd_bytes,bytes_sent,bytes_received,srtt_ms,secure_handshake_ms";

/// Write every record of one run. `flows` and `nodes` name the indices.
pub fn write_connections(
    w: &mut impl Write,
    run_id: u64,
    records: &[ConnRecord],
    flows: &[String],
    nodes: &[String],
) -> io::Result<()> {
    writeln!(w, "{CONNECTIONS_HEADER}")?;
    for rec in records {
        let (r, s) = (&rec.info, &rec.stats);
        let opt_ms = |t: Option<u64>| t.map(fmt_ms).unwrap_or_default();
        fn name(i: u32, v: &[String]) -> &str {
            v.get(i as usize).map_or("", String::as_str)
        }
        let spurious = r
            .peer_rec
            .and_then(|p| records.get(p as usize))
            .map(|p| p.stats.dup_data_received.to_string())
            .unwrap_or_default();
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            run_id,
            r.conn,
            csv_field(name(r.flow, flows)),
            if r.client { "client" } else { "server" },
            csv_field(name(r.node, nodes)),
            csv_field(name(r.peer, nodes)),
            r.local_port,
            r.remote_port,
            fmt_ms(r.opened.0),
            opt_ms(r.established.get()),
            opt_ms(r.established.get().map(|t| t - r.opened.0)),
            opt_ms(r.ended.get()),
            r.outcome.as_str(),
            u8::from(r.outcome.is_failure()),
            s.segments_sent,
            s.retransmissions,
            s.timeouts,
            s.fast_retransmits,
            spurious,
            s.dupacks_received,
            r.max_cwnd,
            s.bytes_sent,
            s.bytes_received,
            opt_ms(r.srtt_ns.get()),
            opt_ms(
                r.secured
                    .get()
                    .zip(r.established.get())
                    .map(|(s, e)| s.saturating_sub(e))
            ),
        )?;
    }
    Ok(())
}
