//! Time series of a run (OMNeT++'s "vectors"): at every multiple of
//! `timeseries_interval` the world samples cumulative counters — each flow's
//! bytes on the wire and retransmissions, each link direction's packets,
//! bytes, drops, busy time and queue peak, each early TCP connection's
//! cwnd, SRTT, RTO and retransmissions — and the recorder buckets finished
//! messages by the interval they were sent in. `metrics::timeseries` turns
//! both into `timeseries.csv`, `timeseries_links.csv`, `timeseries_tcp.csv`.
//!
//! Differences of cumulative samples make every interval's values, so the
//! intervals of a series sum exactly to the run's totals. Per-link series
//! are kept for runs with at most [`MAX_SERIES_LINKS`] links and per-TCP
//! series for the first [`MAX_SERIES_CONNECTIONS`] connection endpoints, so
//! a 10,000-client run does not write millions of rows.

use super::{Ev, World};
use crate::metrics::timeseries::{LinkSample, TcpSample, MAX_SERIES_CONNECTIONS, MAX_SERIES_LINKS};
use crate::sim::{EventQueue, SimTime};

/// What the world samples.
#[derive(Debug, Default)]
pub(crate) struct SeriesState {
    pub(crate) interval_ns: u64,
    /// `[k][flow]`: cumulative (bytes_on_wire, retransmissions) at the end
    /// of interval k.
    pub(crate) flows: Vec<Vec<(u64, u64)>>,
    /// `[k][link * 2 + dir]`, when links are sampled.
    pub(crate) links: Vec<Vec<LinkSample>>,
    /// `[k][medium]`: cumulative medium counters.
    pub(crate) media: Vec<Vec<crate::link::medium::MediumStats>>,
    pub(crate) tcp: Vec<TcpSample>,
    tcp_rtx_seen: Vec<u32>,
}

impl World<'_> {
    pub(crate) fn series_prime(&mut self, queue: &mut EventQueue<Ev>) {
        self.series.interval_ns = self.sc.timeseries_interval.as_nanos();
        if self.series.interval_ns > 0 {
            let _ = queue.push(SimTime(self.series.interval_ns), Ev::Sample);
        }
    }

    /// Sample at an interval boundary (and once at the end of the run).
    pub(crate) fn on_sample(&mut self, now: SimTime, queue: Option<&mut EventQueue<Ev>>) {
        let k = self.series.flows.len() as u32;
        let flows: Vec<(u64, u64)> = (0..self.sc.flows.len())
            .map(|f| {
                self.recorder
                    .stats_mut(f)
                    .map_or((0, 0), |s| (s.bytes_on_wire, s.retransmissions))
            })
            .collect();
        self.series.flows.push(flows);
        if self.links.len() <= MAX_SERIES_LINKS {
            let mut row = Vec::with_capacity(self.links.len() * 2);
            for l in &mut self.links {
                for d in &mut l.dirs {
                    let st = &d.stats;
                    row.push(LinkSample {
                        packets: st.tx_packets,
                        bytes: st.tx_bytes,
                        drops_channel: st.lost_channel,
                        drops_queue: st.lost_queue,
                        drops_link_down: st.lost_link_down,
                        busy_ns: st.busy_ns,
                        queue_peak: d.queue_peak,
                    });
                    d.queue_peak = d.queue.len() as u32;
                }
            }
            self.series.links.push(row);
        }
        if !self.radio.media.is_empty() {
            let row = self.radio.media.iter().map(|m| m.medium.stats).collect();
            self.series.media.push(row);
        }
        for s in self.tcp.socks.iter().flatten() {
            let rec = s.rec;
            if rec >= MAX_SERIES_CONNECTIONS {
                continue;
            }
            let seen = &mut self.series.tcp_rtx_seen;
            if seen.len() <= rec as usize {
                seen.resize(rec as usize + 1, 0);
            }
            let rtx = s.conn.stats().retransmissions;
            let delta = rtx - seen[rec as usize].min(rtx);
            seen[rec as usize] = rtx;
            self.series.tcp.push(TcpSample {
                k,
                rec,
                cwnd: s.conn.cwnd(),
                srtt_ns: s.conn.rtt().srtt().map(|d| d.as_nanos()),
                rto_ns: s.conn.current_rto().as_nanos(),
                retransmissions: delta,
            });
        }
        if let Some(queue) = queue {
            let next = now.0 + self.series.interval_ns;
            if next < self.end_time().0 {
                let _ = queue.push(SimTime(next), Ev::Sample);
            }
        }
    }
}
