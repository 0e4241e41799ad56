//! Workloads: when each publisher of a flow sends, what value it sends, and
//! the application payload that carries it.
//!
//! Timing (per publisher, each on its own random stream
//! `flow/<flow>/pub/<node>/timing`):
//! - periodic: phase φ ~ U[0, interval) drawn once, then the k-th message
//!   (k = 0, 1, …) at start + φ + k·interval + U[0, jitter];
//! - poisson: exponential gaps with mean `interval`, from `start`.
//!
//! Sends stop at `duration` or after `count` messages, whichever is first.
//!
//! Payload: `payload_bytes` bytes; the first 6 are the application header
//! (flow index u16, message id u32, big-endian), which is how a receiving
//! application recognises a message whatever protocol carried it; then the
//! value as ASCII text (`21.37`), then spaces. The header is part of the
//! payload and so of every byte count.

use crate::sim::{SimDuration, SimRng, SimTime};

/// How a flow's messages map onto receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    PointToPoint,
    Broadcast,
    FanIn,
}

impl Pattern {
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::PointToPoint => "point_to_point",
            Pattern::Broadcast => "broadcast",
            Pattern::FanIn => "fan_in",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// Send at phase + k·interval + U[0, jitter]; the phase is U[0, interval)
    /// per publisher.
    Periodic {
        interval: SimDuration,
        jitter: SimDuration,
    },
    /// Exponential gaps with this mean.
    Poisson { mean_interval: SimDuration },
    /// A saturating source (iperf-like, `protocol = "tcp"` only): from
    /// `start` until `duration` (or `count`), a new message is written
    /// whenever the connection's send buffer has room for a whole one.
    Bulk,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueGen {
    /// mean + Normal(0, sd) per message (a room temperature with sensor noise).
    Temperature {
        mean: f64,
        sd: f64,
    },
    Constant {
        value: f64,
    },
    /// 1, 2, 3, … per publisher.
    Counter,
    Uniform {
        min: f64,
        max: f64,
    },
}

/// Bytes of the application header inside every payload.
pub const APP_HEADER_LEN: usize = 6;

/// State of one publisher of one flow.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub flow: u32,
    pub node: u32,
    /// Position of the publisher in the flow's publisher list.
    pub index: u32,
    /// Rendered topic / URI path, shared with the recorder's copy for
    /// messages.csv (one string per publisher, not two).
    pub topic: std::sync::Arc<str>,
    pub sent: u64,
    /// Scheduled time of the next message (periodic: without jitter).
    next_base: SimTime,
    phase_drawn: bool,
    timing_rng: SimRng,
    value_rng: SimRng,
}

/// Render a topic / URI template for one publisher: `{i}` is the node's
/// group index (`i`), `{name}` the node name, `{flow}` the flow name.
pub fn render_topic(template: &str, flow: &str, node: &str, i: u64) -> String {
    template
        .replace("{i}", &i.to_string())
        .replace("{name}", node)
        .replace("{flow}", flow)
}

/// What a publisher's schedule is made of (the flow's timing fields).
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    pub timing: &'a Timing,
    /// Messages per publisher (None: until `duration`).
    pub count: Option<u64>,
    /// End of the publishing window.
    pub duration: SimDuration,
}

impl Publisher {
    /// Publisher number `index` of flow `flow_idx` (named `flow`), on node
    /// `node` (named `node_name`), publishing to `topic` from `start`. Its
    /// random streams are named after the flow and the node.
    pub fn new(
        seed: u64,
        (flow_idx, flow): (usize, &str),
        (node, node_name): (u32, &str),
        index: usize,
        topic: String,
        start: SimDuration,
    ) -> Self {
        let base = format!("flow/{flow}/pub/{node_name}");
        Publisher {
            flow: flow_idx as u32,
            node,
            index: index as u32,
            topic: topic.into(),
            sent: 0,
            next_base: SimTime::ZERO + start,
            phase_drawn: false,
            timing_rng: SimRng::stream(seed, &format!("{base}/timing")),
            value_rng: SimRng::stream(seed, &format!("{base}/value")),
        }
    }

    /// Time of the next send, or `None` when the publisher is done.
    pub fn next_send(&mut self, s: Schedule<'_>) -> Option<SimTime> {
        if s.count.is_some_and(|c| self.sent >= c) {
            return None;
        }
        let t = match *s.timing {
            Timing::Periodic { interval, jitter } => {
                if !self.phase_drawn {
                    self.phase_drawn = true;
                    self.next_base += SimDuration(self.timing_rng.below(interval.0.max(1)));
                }
                let j = self.timing_rng.range_inclusive(0, jitter.0);
                let t = self.next_base + SimDuration(j);
                self.next_base += interval;
                t
            }
            Timing::Poisson { mean_interval } => {
                let gap = self.timing_rng.exp(mean_interval.0 as f64);
                // round to the nanosecond; gaps are finite and far below u64::MAX
                self.next_base += SimDuration(gap.round().clamp(0.0, 1e18) as u64);
                self.next_base
            }
            // one wake-up at `start`; the transport pulls messages after it
            Timing::Bulk if self.sent == 0 && !self.phase_drawn => {
                self.phase_drawn = true;
                self.next_base
            }
            Timing::Bulk => return None,
        };
        (t < SimTime::ZERO + s.duration).then_some(t)
    }

    /// The value of the next message.
    pub fn next_value(&mut self, gen: &ValueGen) -> f64 {
        match *gen {
            ValueGen::Temperature { mean, sd } => self.value_rng.normal(mean, sd),
            ValueGen::Constant { value } => value,
            ValueGen::Counter => (self.sent + 1) as f64,
            ValueGen::Uniform { min, max } => min + (max - min) * self.value_rng.uniform(),
        }
    }
}

/// Write a value as it appears in payloads and `messages.csv`: integers
/// without decimals, anything else with three.
///
/// Three decimals are written with integer arithmetic (round half away from
/// zero on the value times 1000): exact, the same on every machine, and much
/// cheaper than float formatting on the per-message path.
pub fn write_value(out: &mut impl std::io::Write, v: f64) {
    let _ = if v.fract() == 0.0 && v.abs() < 1e15 {
        write!(out, "{}", v as i64)
    } else if v.is_finite() && v.abs() < 1e15 {
        let milli = (v * 1000.0).round() as i64;
        let sign = if milli < 0 { "-" } else { "" };
        let m = milli.unsigned_abs();
        write!(out, "{sign}{}.{:03}", m / 1000, m % 1000)
    } else {
        write!(out, "{v:.3}")
    };
}

/// `write_value` into a new string.
pub fn format_value(v: f64) -> String {
    let mut b = Vec::with_capacity(24);
    write_value(&mut b, v);
    String::from_utf8(b).unwrap_or_default()
}

/// Write the payload of message `msg` of flow `flow` into `out` (cleared).
pub fn build_payload(out: &mut Vec<u8>, flow: u32, msg: u32, value: f64, payload_bytes: usize) {
    out.clear();
    out.extend_from_slice(&(flow as u16).to_be_bytes());
    out.extend_from_slice(&msg.to_be_bytes());
    // the value's text, cut to the room left (writes into `out`'s capacity)
    write_value(out, value);
    out.truncate(payload_bytes.max(APP_HEADER_LEN));
    out.resize(payload_bytes.max(APP_HEADER_LEN), b' ');
}

/// Read the application header back: (flow, message id).
pub fn parse_payload(payload: &[u8]) -> Option<(u32, u32)> {
    let h = payload.get(..APP_HEADER_LEN)?;
    let flow = u16::from_be_bytes([h[0], h[1]]) as u32;
    let msg = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
    Some((flow, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_exactly() {
        for (v, s) in [
            (21.0, "21"),
            (-3.0, "-3"),
            (21.3754, "21.375"),
            (21.3756, "21.376"),
            (-0.0006, "-0.001"),
            (0.0004, "0.000"),
            (1e20, "100000000000000000000.000"),
        ] {
            assert_eq!(format_value(v), s, "{v}");
        }
    }

    #[test]
    fn payload_round_trip_and_size() {
        let mut b = Vec::new();
        build_payload(&mut b, 3, 70_000, 21.375, 32);
        assert_eq!(b.len(), 32);
        assert_eq!(parse_payload(&b), Some((3, 70_000)));
        assert_eq!(&b[6..12], b"21.375");
        build_payload(&mut b, 1, 2, 21.375, 8);
        assert_eq!(b.len(), 8);
        assert_eq!(&b[6..], b"21");
        assert_eq!(parse_payload(&b[..5]), None);
    }
}
