//! TCP parameters and the two profiles that give their defaults.
//!
//! * `rfc`: the standards' numbers — RFC 6298 (initial RTO 1 s, minimum RTO
//!   1 s, maximum 60 s, G = 1 ms), RFC 1122 §4.2.3.2 / RFC 5681 §4.2 delayed
//!   ACK (200 ms, every second full-sized segment), RFC 6928 initial window,
//!   RFC 9293 §3.8.3 give-up bounds (SYN ≥ 3 min, data ≥ 100 s), MSL 2 min,
//!   NewReno congestion control (RFC 5681, RFC 6582).
//! * `linux-like`: what Linux 6.x does by default — RTO = SRTT + max(4·RTTVAR,
//!   200 ms), initial RTO 1 s, maximum 120 s, tcp_syn_retries 6,
//!   tcp_synack_retries 5, tcp_retries2 15, delayed ACK adapting between
//!   40 ms and 200 ms with quick-ACK mode at connection start, timestamps,
//!   SACK-permitted and window scale 7 on, initial window 10 segments,
//!   TIME_WAIT 60 s, CUBIC congestion control (RFC 9438, Linux's default
//!   since 2.6.19; without HyStart, see [`super::congestion`]).
//!
//! Explicit scenario fields override the profile's values (`[protocols.tcp]`).

use crate::sim::SimDuration;

pub use super::congestion::CongestionAlgorithm;

/// Which set of defaults a [`Config`] started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Standards' numbers (see module doc).
    Rfc,
    /// Linux defaults (see module doc).
    LinuxLike,
}

impl Profile {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Rfc => "rfc",
            Profile::LinuxLike => "linux-like",
        }
    }
    /// This profile's parameters.
    pub fn config(self) -> Config {
        match self {
            Profile::Rfc => Config::rfc(),
            Profile::LinuxLike => Config::linux_like(),
        }
    }
}

/// How the retransmission timeout is computed from SRTT and RTTVAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtoFormula {
    /// RFC 6298 §2.3: `max(SRTT + max(G, 4·RTTVAR), min_rto)`.
    Rfc6298,
    /// Linux `tcp_set_rto`: `SRTT + max(4·RTTVAR, min_rto)` (the variance
    /// term is floored at rto_min, so RTO ≈ SRTT + 200 ms on a quiet path).
    Linux,
}

/// Initial congestion window (RFC 5681 §3.1, RFC 6928 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialWindow {
    /// RFC 6928 §2: `min(10·MSS, max(2·MSS, 14600))` bytes.
    Rfc6928,
    /// A fixed number of segments (Linux: 10 regardless of MSS).
    Segments(u32),
}

/// Every parameter of the TCP model. Copy, so each connection may hold its
/// own (about 100 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Profile the defaults came from (informational).
    pub profile: Profile,
    /// RTO formula.
    pub rto_formula: RtoFormula,
    /// RTO before any RTT sample (RFC 6298 §2.1: 1 s).
    pub initial_rto: SimDuration,
    /// Lower bound of the RTO (RFC 6298 §2.4: 1 s; Linux TCP_RTO_MIN 200 ms).
    pub min_rto: SimDuration,
    /// Upper bound of the RTO, also of its backoff (RFC 6298 §2.5: ≥ 60 s;
    /// Linux TCP_RTO_MAX 120 s).
    pub max_rto: SimDuration,
    /// Clock granularity G of RFC 6298 §2.3 (used by `Rfc6298`).
    pub clock_granularity: SimDuration,
    /// RTO used once established when the SYN (or SYN-ACK) was retransmitted
    /// and no RTT sample exists (RFC 6298 §5.7: 3 s).
    pub fallback_rto: SimDuration,
    /// SYN retransmissions before giving up (Linux tcp_syn_retries).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before giving up (Linux tcp_synack_retries).
    pub synack_retries: u32,
    /// Consecutive RTO expirations (data, FIN, zero-window probes without
    /// answer) before giving up (Linux tcp_retries2).
    pub retries: u32,
    /// RFC 9293 §3.10.1 USER TIMEOUT: give up when data stays unacknowledged
    /// this long (Linux TCP_USER_TIMEOUT). `None`: only `retries` applies.
    pub user_timeout: Option<SimDuration>,
    /// Smallest delayed-ACK timeout (Linux TCP_ATO_MIN 40 ms).
    pub delayed_ack_min: SimDuration,
    /// Largest delayed-ACK timeout (RFC 1122 §4.2.3.2: ≤ 500 ms; 200 ms).
    /// Equal to `delayed_ack_min` for a fixed timer. Zero disables delayed
    /// ACKs (every data segment is acknowledged at once).
    pub delayed_ack_max: SimDuration,
    /// Segments acknowledged at once at connection start (Linux quick-ACK
    /// mode, up to 16).
    pub quickack_segments: u32,
    /// Full-sized segments that force an immediate ACK (RFC 5681 §4.2: 2).
    pub ack_every: u32,
    /// Nagle's algorithm (RFC 9293 §3.7.4), on by default.
    pub nagle: bool,
    /// Minshall's variant of Nagle (Linux): a runt waits only while an
    /// earlier runt is unacknowledged, not behind any unacknowledged data.
    pub nagle_minshall: bool,
    /// Offer the timestamps option (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer window scaling with this shift (RFC 7323 §2); `None` to not.
    pub window_scale: Option<u8>,
    /// Offer SACK-permitted (RFC 2018). SACK blocks are neither sent nor used.
    pub sack_permitted: bool,
    /// Initial congestion window.
    pub initial_window: InitialWindow,
    /// Send buffer capacity in bytes (`write` accepts up to this much
    /// unacknowledged data).
    pub send_buffer: u32,
    /// Receive buffer capacity in bytes (the largest window advertised).
    pub recv_buffer: u32,
    /// TIME_WAIT duration, 2·MSL (RFC 9293 §3.4.2: MSL 2 min; Linux 60 s).
    pub time_wait: SimDuration,
    /// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2: 3).
    pub dupack_threshold: u32,
    /// Window growth and reduction: NewReno (`rfc`) or CUBIC (`linux-like`).
    pub congestion: CongestionAlgorithm,
}

impl Default for Config {
    /// The `linux-like` profile (DESIGN.md: `profile = "linux-like"`).
    fn default() -> Self {
        Config::linux_like()
    }
}

impl Config {
    /// The `rfc` profile.
    pub fn rfc() -> Config {
        Config {
            profile: Profile::Rfc,
            rto_formula: RtoFormula::Rfc6298,
            initial_rto: SimDuration::from_secs(1),
            min_rto: SimDuration::from_secs(1),
            max_rto: SimDuration::from_secs(60),
            clock_granularity: SimDuration::from_millis(1),
            fallback_rto: SimDuration::from_secs(3),
            // 1+2+…+128 s = 255 s ≥ the 3 min of RFC 9293 §3.8.3 (R2 for SYN).
            syn_retries: 7,
            synack_retries: 7,
            // 1+2+…+32+60+60+60 s = 243 s ≥ the 100 s of RFC 9293 §3.8.3 (R2).
            retries: 8,
            user_timeout: None,
            delayed_ack_min: SimDuration::from_millis(200),
            delayed_ack_max: SimDuration::from_millis(200),
            quickack_segments: 0,
            ack_every: 2,
            nagle: true,
            nagle_minshall: false,
            timestamps: false,
            window_scale: None,
            sack_permitted: false,
            initial_window: InitialWindow::Rfc6928,
            send_buffer: 65_535,
            recv_buffer: 65_535,
            time_wait: SimDuration::from_secs(240),
            dupack_threshold: 3,
            congestion: CongestionAlgorithm::NewReno,
        }
    }

    /// The `linux-like` profile.
    pub fn linux_like() -> Config {
        Config {
            profile: Profile::LinuxLike,
            rto_formula: RtoFormula::Linux,
            initial_rto: SimDuration::from_secs(1),
            min_rto: SimDuration::from_millis(200),
            max_rto: SimDuration::from_secs(120),
            clock_granularity: SimDuration::from_millis(1),
            fallback_rto: SimDuration::from_secs(3),
            syn_retries: 6,
            synack_retries: 5,
            retries: 15,
            user_timeout: None,
            delayed_ack_min: SimDuration::from_millis(40),
            delayed_ack_max: SimDuration::from_millis(200),
            quickack_segments: 16,
            ack_every: 2,
            nagle: true,
            nagle_minshall: true,
            timestamps: true,
            window_scale: Some(7),
            sack_permitted: true,
            initial_window: InitialWindow::Segments(10),
            send_buffer: 16_384,
            recv_buffer: 131_072,
            time_wait: SimDuration::from_secs(60),
            dupack_threshold: 3,
            congestion: CongestionAlgorithm::Cubic,
        }
    }

    /// Shortest gap, in ms, between two ACKs sent in reply to out-of-window
    /// segments without data: Linux's `tcp_invalid_ratelimit` (500 ms),
    /// which breaks ACK loops between two confused ends, for `linux-like`;
    /// 0 (every such segment answered, RFC 9293 §3.10.7.4) for `rfc`. A
    /// property of the profile, not a field: every connection holds its
    /// config, and the field would grow each by 8 bytes.
    pub fn invalid_ack_ratelimit_ms(&self) -> u32 {
        match self.profile {
            Profile::LinuxLike => 500,
            Profile::Rfc => 0,
        }
    }

    /// Initial congestion window in bytes for sender MSS `mss`.
    pub fn initial_cwnd(&self, mss: u32) -> u32 {
        match self.initial_window {
            // RFC 6928 §2.
            InitialWindow::Rfc6928 => (10 * mss).min((2 * mss).max(14_600)),
            InitialWindow::Segments(n) => n.max(1).saturating_mul(mss),
        }
    }
}
