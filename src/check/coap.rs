//! The CoAP message-layer rules (RFC 7252 §4.2, §4.4), judged on the
//! datagrams an endpoint sends and receives: the 4-byte header read from
//! the bytes themselves (type, Message ID), a message told from its
//! retransmission by its bytes (a retransmission repeats them exactly).
//!
//! State: per (sender, peer endpoint, Message ID) the last new message
//! within its lifetime (EXCHANGE_LIFETIME for a CON, NON_LIFETIME for a
//! NON) and, for a CON, its transmissions until it ends (ACK or RST
//! received, given up); expired entries are dropped as time passes, a
//! node's all when it crashes (its endpoint starts afresh).

use super::{Monitors, Rule, Violation};
use crate::sim::{SimDuration, SimTime};
use std::collections::{BTreeMap, BTreeSet};

/// The CoAP transmission parameters the rules need (RFC 7252 §4.8).
#[derive(Debug, Clone, Copy)]
pub struct CoapParams {
    pub max_retransmit: u32,
    pub exchange_lifetime: SimDuration,
    pub non_lifetime: SimDuration,
}

/// (sender node, peer node, peer port, Message ID).
type MidKey = (u32, u32, u16, u16);

/// A CON not ended yet.
#[derive(Debug)]
struct Con {
    transmissions: u32,
    /// The request handle the sender's endpoint named it by (its give-up
    /// event carries that), if it is a request of ours.
    handle: Option<u64>,
    flow: Option<u32>,
    /// Too many transmissions already recorded (one violation each).
    flagged: bool,
}

#[derive(Debug, Default)]
pub(super) struct CoapState {
    params: Option<CoapParams>,
    /// Last new CON/NON per key: (lifetime end, hash of its bytes).
    mids: BTreeMap<MidKey, (SimTime, u64)>,
    /// (lifetime end, key), to drop `mids` entries in time order.
    expiry: BTreeSet<(SimTime, MidKey)>,
    cons: BTreeMap<MidKey, Con>,
    /// (sender node, request handle) → its CON's key.
    handles: BTreeMap<(u32, u64), MidKey>,
}

/// CoAP message types (RFC 7252 §3).
const CON: u8 = 0;
const NON: u8 = 1;

/// (type, Message ID) of a CoAP datagram, if it has a version-1 header.
fn header(b: &[u8]) -> Option<(u8, u16)> {
    if b.len() < 4 || b[0] >> 6 != 1 {
        return None;
    }
    Some(((b[0] >> 4) & 3, u16::from_be_bytes([b[2], b[3]])))
}

/// FNV-1a over the bytes (deterministic, no per-process seed).
pub(super) fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Monitors {
    /// Judge CoAP endpoints with these parameters (`coap-con-outcome`,
    /// `coap-mid-reuse`); without them those rules are off.
    pub fn with_coap(mut self, params: CoapParams) -> Self {
        self.coap.params = Some(params);
        self
    }

    fn coap_expire(&mut self, now: SimTime) {
        let s = &mut self.coap;
        while let Some(&(t, k)) = s.expiry.first() {
            if t > now {
                break;
            }
            s.expiry.remove(&(t, k));
            if s.mids.get(&k).is_some_and(|&(u, _)| u == t) {
                s.mids.remove(&k);
                // a CON's lifetime outlasts its retransmissions
                // (EXCHANGE_LIFETIME > MAX_TRANSMIT_WAIT): one still open
                // ended unreported (a separate response's give-up)
                if let Some(c) = s.cons.remove(&k) {
                    if let Some(h) = c.handle {
                        s.handles.remove(&(k.0, h));
                    }
                }
            }
        }
    }

    /// The CoAP endpoint at `node` sent `datagram` to `peer` (node, port);
    /// `handle`: the request of its own this is, `flow`: its attribution.
    pub fn coap_sent(
        &mut self,
        now: SimTime,
        node: u32,
        peer: (u32, u16),
        datagram: &[u8],
        handle: Option<u64>,
        flow: Option<u32>,
    ) {
        let Some(p) = self.coap.params else {
            return;
        };
        let Some((ty, mid)) = header(datagram) else {
            return;
        };
        if ty != CON && ty != NON {
            // ACK and RST carry the Message ID of what they answer
            return;
        }
        self.coap_expire(now);
        let key = (node, peer.0, peer.1, mid);
        let hash = fnv(datagram);
        let mut found = None;
        if let Some(&(until, h)) = self.coap.mids.get(&key) {
            if until > now {
                found = Some((until, h));
            }
        }
        match found {
            Some((_, h)) if h == hash => {
                // the same message again: a retransmission
                if ty != CON {
                    return;
                }
                let Some(c) = self.coap.cons.get_mut(&key) else {
                    return;
                };
                c.transmissions += 1;
                if c.transmissions > 1 + p.max_retransmit && !c.flagged {
                    c.flagged = true;
                    let (n, flow) = (c.transmissions, c.flow);
                    self.record(Violation {
                        t: now,
                        node,
                        rule: Rule::CoapConOutcome,
                        flow,
                        detail: format!(
                            "CON {mid} to node {} sent {n} times (MAX_RETRANSMIT = {}: at most {})",
                            peer.0,
                            p.max_retransmit,
                            1 + p.max_retransmit
                        ),
                    });
                }
                return;
            }
            Some((until, _)) => {
                self.record(Violation {
                    t: now,
                    node,
                    rule: Rule::CoapMidReuse,
                    flow,
                    detail: format!(
                        "Message ID {mid} reused for a new {} to node {} port {} within its lifetime (until {} ms)",
                        if ty == CON { "CON" } else { "NON" },
                        peer.0,
                        peer.1,
                        crate::metrics::record::fmt_ms(until.0)
                    ),
                });
            }
            None => {}
        }
        let life = if ty == CON {
            p.exchange_lifetime
        } else {
            p.non_lifetime
        };
        let until = now + life;
        self.coap.mids.insert(key, (until, hash));
        self.coap.expiry.insert((until, key));
        if let Some(old) = self.coap.cons.remove(&key) {
            if let Some(h) = old.handle {
                self.coap.handles.remove(&(node, h));
            }
        }
        if ty == CON {
            self.coap.cons.insert(
                key,
                Con {
                    transmissions: 1,
                    handle,
                    flow,
                    flagged: false,
                },
            );
            if let Some(h) = handle {
                self.coap.handles.insert((node, h), key);
            }
        }
    }

    /// The CoAP endpoint at `node` received `datagram` from `peer`: an ACK
    /// or RST ends the CON with its Message ID.
    pub fn coap_received(&mut self, node: u32, peer: (u32, u16), datagram: &[u8]) {
        if self.coap.params.is_none() {
            return;
        }
        let Some((ty, mid)) = header(datagram) else {
            return;
        };
        if ty == CON || ty == NON {
            return;
        }
        let key = (node, peer.0, peer.1, mid);
        if let Some(c) = self.coap.cons.remove(&key) {
            if let Some(h) = c.handle {
                self.coap.handles.remove(&(node, h));
            }
        }
    }

    /// The endpoint at `node` gave up its CON request `handle` (RFC 7252
    /// §4.2: only after MAX_RETRANSMIT retransmissions).
    pub fn coap_gave_up(&mut self, now: SimTime, node: u32, handle: u64) {
        let Some(p) = self.coap.params else {
            return;
        };
        let Some(key) = self.coap.handles.remove(&(node, handle)) else {
            return;
        };
        let Some(c) = self.coap.cons.remove(&key) else {
            return;
        };
        if c.transmissions < 1 + p.max_retransmit {
            self.record(Violation {
                t: now,
                node,
                rule: Rule::CoapConOutcome,
                flow: c.flow,
                detail: format!(
                    "CON {} to node {} given up after {} transmissions (MAX_RETRANSMIT = {}: {} expected)",
                    key.3,
                    key.1,
                    c.transmissions,
                    p.max_retransmit,
                    1 + p.max_retransmit
                ),
            });
        }
    }

    /// The CoAP endpoint at `node` lost its state (a crash): what it sent
    /// is no longer judged.
    pub fn coap_node_reset(&mut self, node: u32) {
        let s = &mut self.coap;
        s.mids.retain(|k, _| k.0 != node);
        s.expiry.retain(|(_, k)| k.0 != node);
        s.cons.retain(|k, _| k.0 != node);
        s.handles.retain(|k, _| k.0 != node);
    }
}
