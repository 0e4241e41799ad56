//! `connections.csv`: one row per TCP connection endpoint (docs/metrics.md).
//!
//! Both endpoints of one connection share its `connection` id (the row
//! number of the active opener, which also appears in `packets.csv`).
//! `spurious_retransmissions` of an endpoint is the number of its data
//! segments the peer received although it already had every byte of them
//! (wholly or partly below its RCV.NXT): retransmissions that were not
//! needed. It is empty when the peer is not simulated.

use crate::metrics::record::{csv_field, fmt_ms};
use crate::world::tcp::ConnRecord;
use std::io::{self, Write};

/// Header of `connections.csv`.
pub const CONNECTIONS_HEADER: &str = "run_id,connection,flow,side,node,peer,local_port,remote_port,opened_ms,established_ms,handshake_ms,ended_ms,outcome,failed,segments_sent,retransmissions,rto_expiries,fast_retransmits,spurious_retransmissions,dup_acks_received,max_cwnd_bytes,bytes_sent,bytes_received,srtt_ms";

/// Write every record of one run. `flows` and `nodes` name the indices.
pub fn write_connections(
    w: &mut impl Write,
    run_id: u64,
    records: &[ConnRecord],
    flows: &[String],
    nodes: &[String],
) -> io::Result<()> {
    writeln!(w, "{CONNECTIONS_HEADER}")?;
    for r in records {
        let opt_ms = |t: Option<u64>| t.map(fmt_ms).unwrap_or_default();
        fn name(i: u32, v: &[String]) -> &str {
            v.get(i as usize).map_or("", String::as_str)
        }
        let spurious = r
            .peer_rec
            .and_then(|p| records.get(p as usize))
            .map(|p| p.stats.dup_data_received.to_string())
            .unwrap_or_default();
        let s = &r.stats;
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            run_id,
            r.conn,
            csv_field(name(r.flow, flows)),
            if r.client { "client" } else { "server" },
            csv_field(name(r.node, nodes)),
            csv_field(name(r.peer, nodes)),
            r.local_port,
            r.remote_port,
            fmt_ms(r.opened.0),
            opt_ms(r.established.map(|t| t.0)),
            opt_ms(r.established.map(|t| t.0 - r.opened.0)),
            opt_ms(r.ended.map(|t| t.0)),
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
            opt_ms(r.srtt_ns),
        )?;
    }
    Ok(())
}
