//! Observing resources (RFC 7641): the client's freshness rule and the
//! server's list of observers.
//!
//! Client side (in [`super::Endpoint`]): a GET carrying Observe 0 registers;
//! a 2.xx response carrying Observe keeps the token alive as an
//! observation, and later responses with that token are notifications,
//! delivered only when fresh ([`is_fresh`], §3.4).
//!
//! Server side ([`Observers`], held by [`super::ResourceServer`]): one
//! entry per (client endpoint, resource) (§4.1: a new registration replaces
//! the old one); a change of the resource notifies every observer of it
//! with the next 24-bit sequence number (§4.4):
//! - an observer that registered with a CON GET gets CON notifications; one
//!   that registered with a NON GET gets NON notifications, but a CON one
//!   when it has had no CON for `con_interval` (§4.5: at least every 24 h)
//!   and while the server has no round-trip estimate for it;
//! - while a CON notification awaits its ACK, a newer state replaces it in
//!   place, keeping its retransmission counter and timer (§4.5.2;
//!   [`super::MessageLayer::replace`]);
//! - NON notifications to one observer are spaced by at least its smoothed
//!   RTT (§4.5.1: on average no more than one per RTT), the RTT measured
//!   from CON notifications acknowledged at their first transmission
//!   (α = 1/8, as RFC 6298); a state arriving earlier waits, and only the
//!   latest waiting state is sent;
//! - a CON notification that times out, or an RST answering any
//!   notification, removes the observer (§4.5, §3.6).

use std::collections::{BTreeMap, BTreeSet};

use crate::net::addr::SockAddr;
use crate::sim::{SimDuration, SimTime};

use super::codec::Token;
use super::endpoint::Endpoint;
use super::events::{Event, ResponseId};
use super::server::Reply;

/// RFC 7641 §3.4: a notification arriving more than this long after the
/// last accepted one is fresh whatever its sequence number.
pub const FRESHNESS_WINDOW: SimDuration = SimDuration::from_secs(128);

/// Sequence numbers are 24-bit (§4.4).
pub const SEQUENCE_MASK: u32 = 0xff_ffff;

/// RFC 7641 §3.4: is a notification with sequence number `v2` received at
/// `t2` newer than the last accepted one (`v1` at `t1`)?
pub fn is_fresh(v1: u32, t1: SimTime, v2: u32, t2: SimTime) -> bool {
    const HALF: u32 = 1 << 23;
    let (v1, v2) = (v1 & SEQUENCE_MASK, v2 & SEQUENCE_MASK);
    (v1 < v2 && v2 - v1 < HALF) || (v1 > v2 && v1 - v2 > HALF) || t2 > t1 + FRESHNESS_WINDOW
}

/// Server-side Observe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserveConfig {
    /// A NON observer gets a CON notification at least this often (§4.5:
    /// 24 h).
    pub con_interval: SimDuration,
    /// Max-Age of notifications in seconds (§3.3.1, RFC 7252 §5.10.5);
    /// 60 is the default and is not sent.
    pub max_age: u32,
}

impl ObserveConfig {
    /// 24 h, Max-Age 60 s.
    pub const DEFAULT: ObserveConfig = ObserveConfig {
        con_interval: SimDuration::from_secs(24 * 3600),
        max_age: 60,
    };
}

impl Default for ObserveConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One registered observer of one resource.
#[derive(Debug, Clone)]
pub struct Observer {
    pub peer: SockAddr,
    pub token: Token,
    pub path: Box<str>,
    /// It registered with a CON GET: every notification is CON.
    pub confirmable: bool,
    /// The CON notification awaiting its ACK, and when it was first sent.
    pub in_flight: Option<(ResponseId, SimTime)>,
    /// The last CON notification sent (`SimTime::ZERO` before any).
    pub last_con: SimTime,
    /// Smoothed RTT from CON notifications ACKed at the first transmission.
    pub srtt: Option<SimDuration>,
    /// The next NON notification may leave at this time.
    pub next_non: SimTime,
    /// A state newer than the last notification waits for `next_non`.
    pub waiting: bool,
}

/// Counters of a server's Observe work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObserveStats {
    /// Registrations accepted (new or replacing an entry).
    pub registrations: u64,
    /// Explicit deregistrations (GET with Observe 1).
    pub deregistrations: u64,
    /// Notifications sent: CON, NON, and CON content replaced in flight.
    pub notifications_sent: u64,
    /// Of which replaced a CON notification still in flight (§4.5.2).
    pub replaced_in_flight: u64,
    /// NON notifications that waited for their observer's RTT spacing.
    pub paced: u64,
    /// Observers removed because a CON notification timed out.
    pub dropped_timeout: u64,
    /// Observers removed because the client answered with RST.
    pub dropped_reset: u64,
    /// Registrations refused because the list was full (a server's
    /// `ResourceServer::with_max_observers`).
    pub refused_full: u64,
}

/// How one notification is to be sent (decided by [`Observers`], sent by
/// the server through its endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// Replace the content of this in-flight CON notification.
    Replace(ResponseId),
    /// A new CON (true) or NON (false) notification.
    New(bool),
    /// Not now: a NON waits for the observer's RTT spacing.
    Wait,
}

/// The observers of a server's resources.
#[derive(Debug, Clone)]
pub struct Observers {
    config: ObserveConfig,
    list: BTreeMap<u64, Observer>,
    next_id: u64,
    /// In-flight notification → observer.
    by_response: BTreeMap<u64, u64>,
    /// Observers with a waiting NON notification, by due time.
    timers: BTreeSet<(SimTime, u64)>,
    /// The last sequence number given (one counter for every resource of
    /// the server: increasing per resource, §4.4).
    seq: u32,
    stats: ObserveStats,
}

impl Default for Observers {
    fn default() -> Self {
        Self::new(ObserveConfig::DEFAULT)
    }
}

impl Observers {
    /// No observers (a server that never had one shares this).
    pub const EMPTY: Observers = Observers::new(ObserveConfig::DEFAULT);

    pub const fn new(config: ObserveConfig) -> Self {
        Observers {
            config,
            list: BTreeMap::new(),
            next_id: 0,
            by_response: BTreeMap::new(),
            timers: BTreeSet::new(),
            seq: 0,
            stats: ObserveStats {
                registrations: 0,
                deregistrations: 0,
                notifications_sent: 0,
                replaced_in_flight: 0,
                paced: 0,
                dropped_timeout: 0,
                dropped_reset: 0,
                refused_full: 0,
            },
        }
    }
    pub fn config(&self) -> &ObserveConfig {
        &self.config
    }
    pub fn stats(&self) -> &ObserveStats {
        &self.stats
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Every observer, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Observer)> {
        self.list.iter().map(|(k, o)| (*k, o))
    }
    /// The observer whose notification is `response`.
    pub fn by_response(&self, response: ResponseId) -> Option<&Observer> {
        self.list.get(self.by_response.get(&response.0)?)
    }
    /// The current sequence number (that of the last change).
    pub fn sequence(&self) -> u32 {
        self.seq
    }
    /// A resource changed: the next sequence number.
    pub fn next_sequence(&mut self) -> u32 {
        self.seq = (self.seq + 1) & SEQUENCE_MASK;
        self.seq
    }

    /// GET with Observe 0 from `peer` on `path` answered 2.xx: add the
    /// observer, or update its entry (§4.1).
    pub fn register(&mut self, now: SimTime, peer: SockAddr, token: Token, path: &str, con: bool) {
        self.stats.registrations += 1;
        if let Some(o) = self
            .list
            .values_mut()
            .find(|o| o.peer == peer && &*o.path == path)
        {
            o.token = token;
            o.confirmable = con;
            return;
        }
        let _ = now;
        let id = self.next_id;
        self.next_id += 1;
        self.list.insert(
            id,
            Observer {
                peer,
                token,
                path: path.into(),
                confirmable: con,
                in_flight: None,
                last_con: SimTime::ZERO,
                srtt: None,
                next_non: SimTime::ZERO,
                waiting: false,
            },
        );
    }

    /// A registration was refused (the list is full): counted.
    pub fn refuse(&mut self) {
        self.stats.refused_full += 1;
    }

    /// GET with Observe 1 (§3.6): remove `peer`'s entry for `path`.
    pub fn deregister(&mut self, peer: SockAddr, path: &str) {
        let id = self
            .list
            .iter()
            .find(|(_, o)| o.peer == peer && &*o.path == path)
            .map(|(k, _)| *k);
        if let Some(id) = id {
            self.stats.deregistrations += 1;
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(o) = self.list.remove(&id) {
            if let Some((r, _)) = o.in_flight {
                self.by_response.remove(&r.0);
            }
            if o.waiting {
                self.timers.remove(&(o.next_non, id));
            }
        }
    }

    /// Observers of `path`, in registration order (into `out`, cleared).
    pub fn of_path(&self, path: &str, out: &mut Vec<u64>) {
        out.clear();
        out.extend(
            self.list
                .iter()
                .filter(|(_, o)| &*o.path == path)
                .map(|(k, _)| *k),
        );
    }

    pub fn get(&self, id: u64) -> Option<&Observer> {
        self.list.get(&id)
    }

    /// How observer `id` is to get the resource's new state now.
    pub fn decide(&mut self, now: SimTime, id: u64) -> Send {
        let interval = self.config.con_interval;
        let Some(o) = self.list.get_mut(&id) else {
            return Send::Wait;
        };
        if let Some((r, _)) = o.in_flight {
            return Send::Replace(r);
        }
        let con = o.confirmable
            || o.srtt.is_none()
            || o.last_con == SimTime::ZERO
            || now >= o.last_con + interval;
        if con {
            return Send::New(true);
        }
        if now < o.next_non {
            if !o.waiting {
                o.waiting = true;
                self.timers.insert((o.next_non, id));
                self.stats.paced += 1;
            }
            return Send::Wait;
        }
        Send::New(false)
    }

    /// Observer `id` was sent a notification: `response` is its tracked
    /// message (a CON, or a NON kept for matching an RST).
    pub fn sent(&mut self, now: SimTime, id: u64, response: ResponseId, con: bool, replaced: bool) {
        self.stats.notifications_sent += 1;
        if replaced {
            self.stats.replaced_in_flight += 1;
        }
        let Some(o) = self.list.get_mut(&id) else {
            return;
        };
        if o.waiting {
            o.waiting = false;
            self.timers.remove(&(o.next_non, id));
        }
        if con {
            if !replaced {
                o.in_flight = Some((response, now));
                o.last_con = now;
            }
        } else if let Some(rtt) = o.srtt {
            o.next_non = now + rtt;
        }
        self.by_response.insert(response.0, id);
    }

    /// Our notification `response` was acknowledged after `transmissions`.
    pub fn acked(&mut self, now: SimTime, response: ResponseId, transmissions: u32) {
        let Some(id) = self.by_response.remove(&response.0) else {
            return;
        };
        let Some(o) = self.list.get_mut(&id) else {
            return;
        };
        if let Some((r, sent)) = o.in_flight {
            if r == response {
                o.in_flight = None;
                // Karn: only an exchange without retransmission is a sample
                if transmissions == 1 {
                    let sample = now - sent;
                    o.srtt = Some(match o.srtt {
                        None => sample,
                        Some(s) => SimDuration((s.0 * 7 + sample.0) / 8),
                    });
                }
            }
        }
    }

    /// Our notification `response` ended without an ACK: timed out
    /// (`reset` false) or was rejected with RST: the observer is removed
    /// (§4.5, §3.6). A NON notification that merely expired (`None`
    /// outcome) only forgets the match.
    pub fn failed(&mut self, response: ResponseId, reset: Option<bool>) {
        let Some(id) = self.by_response.remove(&response.0) else {
            return;
        };
        match reset {
            Some(true) => {
                self.stats.dropped_reset += 1;
                self.remove(id);
            }
            Some(false) => {
                self.stats.dropped_timeout += 1;
                self.remove(id);
            }
            None => {}
        }
    }

    /// Send `reply` (a notification) to observer `id` through `ep` as
    /// [`Observers::decide`] says: replacing its CON in flight, as a new
    /// CON or NON, or not now (a NON waiting for the RTT spacing).
    pub fn notify(&mut self, now: SimTime, ep: &mut Endpoint, id: u64, reply: &Reply) {
        let Some(o) = self.get(id) else {
            return;
        };
        let (peer, token) = (o.peer, o.token);
        match self.decide(now, id) {
            Send::Replace(r) if ep.replace_notification(r, token, reply) => {
                self.sent(now, id, r, true, true);
            }
            Send::Replace(r) => {
                self.failed(r, None);
                let r = ep.notify(peer, token, reply, true);
                self.sent(now, id, r, true, false);
            }
            Send::New(con) => {
                let r = ep.notify(peer, token, reply, con);
                self.sent(now, id, r, con, false);
            }
            Send::Wait => {}
        }
    }

    /// The fate of a notification (`Event::ResponseAcked` / `GaveUp` /
    /// `Reset` / `Expired`) updates its observer; true if `ev` is such an
    /// event for one of these observers' notifications.
    pub fn on_fate(&mut self, now: SimTime, ev: &Event) -> bool {
        let (response, outcome) = match ev {
            Event::ResponseAcked {
                response,
                transmissions,
            } => {
                let mine = self.by_response.contains_key(&response.0);
                self.acked(now, *response, *transmissions);
                return mine;
            }
            Event::ResponseGaveUp { response } => (response, Some(false)),
            Event::ResponseReset { response } => (response, Some(true)),
            Event::ResponseExpired { response } => (response, None),
            _ => return false,
        };
        let mine = self.by_response.contains_key(&response.0);
        self.failed(*response, outcome);
        mine
    }

    /// Whether `response` is a notification of these observers in flight.
    pub fn owns(&self, response: ResponseId) -> bool {
        self.by_response.contains_key(&response.0)
    }

    /// Observers of `path`.
    pub fn count_of(&self, path: &str) -> usize {
        self.list.values().filter(|o| &*o.path == path).count()
    }

    /// When the next waiting NON notification is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.first().map(|t| t.0)
    }

    /// The next observer whose waiting notification is due at `now`
    /// (its timer is consumed).
    pub fn due(&mut self, now: SimTime) -> Option<u64> {
        let &(t, id) = self.timers.first()?;
        if t > now {
            return None;
        }
        self.timers.remove(&(t, id));
        if let Some(o) = self.list.get_mut(&id) {
            o.waiting = false;
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_section_3_4() {
        let t = SimTime::ZERO + SimDuration::from_secs(10);
        assert!(is_fresh(5, t, 6, t));
        assert!(!is_fresh(6, t, 5, t));
        assert!(!is_fresh(6, t, 6, t));
        // wrap-around: 2^24 − 1 → 0 is newer
        assert!(is_fresh(SEQUENCE_MASK, t, 0, t));
        assert!(!is_fresh(0, t, SEQUENCE_MASK, t));
        // more than 2^23 ahead reads as older
        assert!(!is_fresh(0, t, (1 << 23) + 1, t));
        // but anything is fresh after 128 s
        let later = t + FRESHNESS_WINDOW + SimDuration::from_nanos(1);
        assert!(is_fresh(6, t, 5, later));
        assert!(!is_fresh(6, t, 5, t + FRESHNESS_WINDOW));
    }
}
