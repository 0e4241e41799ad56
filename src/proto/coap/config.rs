//! CoAP transmission parameters (RFC 7252 §4.8) and the times derived from
//! them (§4.8.2).

use crate::sim::SimDuration;

/// The retransmission-timeout algorithm of CON messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Congestion {
    /// RFC 7252 §4.2: initial timeout uniform in
    /// [ACK_TIMEOUT, ACK_TIMEOUT·ACK_RANDOM_FACTOR], doubled at each
    /// retransmission.
    #[default]
    Default,
    /// CoCoA (draft-ietf-core-cocoa-03): per-peer strong/weak RTO
    /// estimators, variable back-off factor, RTO aging (docs/coap.md,
    /// "Congestion control").
    Cocoa,
}

/// Endpoint configuration: the RFC 7252 §4.8 parameters plus qossim's
/// NON-request choice. (How a server answers — piggybacked or separate — is
/// the application's choice, e.g. `ResourceServer`'s.)
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ACK_TIMEOUT (§4.8, default 2 s).
    pub ack_timeout: SimDuration,
    /// ACK_RANDOM_FACTOR (§4.8, default 1.5); values below 1 are treated as 1.
    pub ack_random_factor: f64,
    /// MAX_RETRANSMIT (§4.8, default 4).
    pub max_retransmit: u32,
    /// NSTART (§4.7, default 1); 0 is treated as 1.
    pub nstart: u32,
    /// DEFAULT_LEISURE (§8.2, multicast only; kept for completeness).
    pub default_leisure: SimDuration,
    /// PROBING_RATE in bytes per second (§4.7): the average rate at which
    /// NON messages may go to a peer that does not respond (the message
    /// layer's definition: docs/coap.md, "Congestion control").
    pub probing_rate: f64,
    /// How CON retransmission timeouts are chosen: RFC 7252's fixed
    /// ACK_TIMEOUT with doubling ([`Congestion::Default`]) or CoCoA's
    /// per-peer RTT-based estimate ([`Congestion::Cocoa`]).
    pub congestion: Congestion,
    /// MAX_LATENCY (§4.8.2, default 100 s).
    pub max_latency: SimDuration,
    /// PROCESSING_DELAY (§4.8.2, default 2 s = ACK_TIMEOUT). Also the bound
    /// after which the endpoint ACKs a CON request the application has not
    /// answered yet (Empty ACK, §5.2.2).
    pub processing_delay: SimDuration,
    /// Client: how long a NON request (which has no ACK) waits for its
    /// response, from its transmission, before `Event::NoResponse` and
    /// releasing its NSTART slot (the message layer's NON hold time).
    /// RFC 7252 leaves this open (§4.7 bounds unanswered traffic only through
    /// PROBING_RATE); the default is ACK_TIMEOUT·ACK_RANDOM_FACTOR.
    pub non_response_timeout: SimDuration,
    /// Client: the shortest token of a request, in bytes (1..=8, default
    /// 2). Tokens count up from 0 in as few bytes as the count needs but no
    /// fewer than this (RFC 7252 §5.3.1 leaves the choice to the client;
    /// libcoap's coap-client sends 1 byte).
    pub token_length: u8,
    /// Test-only mutation knob (tests/monitors.rs): not reachable from
    /// scenario files; always off in real runs.
    #[doc(hidden)]
    /// A broken server: no duplicate detection (RFC 7252 §4.5 violated).
    pub mutant_no_dedup: bool,
    /// Most message IDs remembered for deduplication (§4.5) at once; past
    /// it the ones closest to expiry are forgotten first (a late duplicate
    /// of one is then taken as new) and counted in `Stats::dedup_evicted`.
    /// Unbounded by default, as RFC 7252 assumes (the simulator);
    /// `qossim coap-server` bounds it against floods.
    pub max_dedup_entries: usize,
    /// Most bytes of cached replies (a CON's ACK, with its piggybacked
    /// response) held for duplicates at once; the same eviction.
    pub max_dedup_bytes: usize,
}

impl Default for Config {
    /// RFC 7252 §4.8's defaults.
    fn default() -> Self {
        let mut c = Config {
            ack_timeout: SimDuration::from_secs(2),
            ack_random_factor: 1.5,
            max_retransmit: 4,
            nstart: 1,
            default_leisure: SimDuration::from_secs(5),
            probing_rate: 1.0,
            congestion: Congestion::Default,
            max_latency: SimDuration::from_secs(100),
            processing_delay: SimDuration::from_secs(2),
            non_response_timeout: SimDuration::ZERO,
            token_length: 2,
            mutant_no_dedup: false,
            max_dedup_entries: usize::MAX,
            max_dedup_bytes: usize::MAX,
        };
        c.non_response_timeout = c.max_initial_timeout();
        c
    }
}

impl Config {
    /// ACK_RANDOM_FACTOR, at least 1 and finite.
    pub fn random_factor(&self) -> f64 {
        if self.ack_random_factor.is_finite() && self.ack_random_factor >= 1.0 {
            self.ack_random_factor
        } else {
            1.0
        }
    }

    /// PROBING_RATE in bytes/s; a value that is not finite and > 0 is
    /// treated as the RFC's 1 byte/s.
    pub fn probing_rate(&self) -> f64 {
        if self.probing_rate.is_finite() && self.probing_rate > 0.0 {
            self.probing_rate
        } else {
            1.0
        }
    }

    /// NSTART, at least 1.
    pub fn nstart(&self) -> u32 {
        self.nstart.max(1)
    }

    /// ACK_TIMEOUT·ACK_RANDOM_FACTOR in whole nanoseconds (rounded down):
    /// the upper end of the initial-timeout interval (§4.2).
    pub fn max_initial_timeout(&self) -> SimDuration {
        let ns = libm::floor(self.ack_timeout.as_nanos() as f64 * self.random_factor());
        // `as` saturates for floats beyond u64 range.
        SimDuration::from_nanos(ns as u64).max(self.ack_timeout)
    }

    /// 2^k as a saturating multiplier.
    fn pow2(k: u32) -> u64 {
        1u64.checked_shl(k).unwrap_or(u64::MAX)
    }

    /// MAX_TRANSMIT_SPAN = ACK_TIMEOUT·(2^MAX_RETRANSMIT − 1)·ACK_RANDOM_FACTOR
    /// (§4.8.2; 45 s with the defaults).
    pub fn max_transmit_span(&self) -> SimDuration {
        self.max_initial_timeout()
            .saturating_mul(Self::pow2(self.max_retransmit).saturating_sub(1))
    }

    /// MAX_TRANSMIT_WAIT = ACK_TIMEOUT·(2^(MAX_RETRANSMIT+1) − 1)·ACK_RANDOM_FACTOR
    /// (§4.8.2; 93 s with the defaults): the latest a CON sender gives up.
    pub fn max_transmit_wait(&self) -> SimDuration {
        self.max_initial_timeout()
            .saturating_mul(Self::pow2(self.max_retransmit.saturating_add(1)).saturating_sub(1))
    }

    /// EXCHANGE_LIFETIME = MAX_TRANSMIT_SPAN + 2·MAX_LATENCY + PROCESSING_DELAY
    /// (§4.8.2; 247 s with the defaults): how long a CON message ID is
    /// remembered for deduplication.
    pub fn exchange_lifetime(&self) -> SimDuration {
        self.max_transmit_span() + self.max_latency.saturating_mul(2) + self.processing_delay
    }

    /// NON_LIFETIME = MAX_TRANSMIT_SPAN + MAX_LATENCY (§4.8.2; 145 s with the
    /// defaults): how long a NON message ID is remembered.
    pub fn non_lifetime(&self) -> SimDuration {
        self.max_transmit_span() + self.max_latency
    }

    /// MAX_RTT = 2·MAX_LATENCY + PROCESSING_DELAY (§4.8.2; 202 s).
    pub fn max_rtt(&self) -> SimDuration {
        self.max_latency.saturating_mul(2) + self.processing_delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_times_match_rfc_7252_section_4_8_2() {
        let c = Config::default();
        assert_eq!(c.max_transmit_span(), SimDuration::from_secs(45));
        assert_eq!(c.max_transmit_wait(), SimDuration::from_secs(93));
        assert_eq!(c.max_rtt(), SimDuration::from_secs(202));
        assert_eq!(c.exchange_lifetime(), SimDuration::from_secs(247));
        assert_eq!(c.non_lifetime(), SimDuration::from_secs(145));
        assert_eq!(c.max_initial_timeout(), SimDuration::from_secs(3));
    }

    #[test]
    fn degenerate_parameters_are_clamped() {
        let c = Config {
            ack_random_factor: f64::NAN,
            nstart: 0,
            ..Config::default()
        };
        assert_eq!(c.random_factor(), 1.0);
        assert_eq!(c.nstart(), 1);
        assert_eq!(c.max_initial_timeout(), SimDuration::from_secs(2));
    }
}
