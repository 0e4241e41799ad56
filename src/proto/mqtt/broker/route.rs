//! Routing: the retained store, fan-out to matching sessions, the per-client
//! in-flight window and queue, resends, and `$SYS` publication.

use std::ops::Bound;
use std::sync::Arc;

use crate::sim::SimTime;

use super::super::events::{BrokerEvent, ConnId};
use super::super::packet::{PacketType, QoS, QosPid};
use super::super::session::{Msg, OutState, Outbound, Pending};
use super::super::subtree::SessionIdx;
use super::super::topic::{TopicFilter, TopicName};
use super::{Broker, Out};

impl Broker {
    /// Publish `msg` to every matching subscription; with `retain`, update
    /// the retained store first (§3.3.1.3).
    pub(super) fn route(&mut self, now: SimTime, msg: Arc<Msg>, retain: bool) {
        if retain {
            if msg.payload.is_empty() {
                // [MQTT-3.3.1-10]: a zero-byte retained message deletes the
                // retained message on its topic (and is forwarded as usual,
                // [MQTT-3.3.1-11]).
                self.retained.remove(&msg.topic);
            } else {
                // [MQTT-3.3.1-5]: replaces any previous one.
                self.retained.insert(msg.topic.clone(), msg.clone());
            }
            self.stats.retained_messages = self.retained.len() as u64;
        }
        let mut targets = std::mem::take(&mut self.scratch);
        // One copy per session, at the highest QoS of its overlapping
        // subscriptions (§3.3.5).
        self.tree.matches(&msg.topic, &mut targets);
        for &(idx, granted) in &targets {
            // [MQTT-3.8.4-6]: downgrade to the granted QoS; RETAIN is 0 on
            // normal forwarding [MQTT-3.3.1-9].
            self.deliver(now, idx, &msg, msg.qos.min(granted), false);
        }
        self.scratch = targets;
    }

    /// Retained messages whose topic `filter` matches, in topic order. A
    /// filter without wildcards is one lookup; otherwise only topics sharing
    /// its literal prefix are tested.
    pub(super) fn retained_matching(&self, filter: &TopicFilter) -> Vec<Arc<Msg>> {
        if !filter.has_wildcards() {
            return self
                .retained
                .get(filter.as_str())
                .cloned()
                .into_iter()
                .collect();
        }
        let prefix = filter.literal_prefix();
        self.retained
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(t, _)| t.as_str().starts_with(prefix))
            .filter(|(t, _)| filter.matches(t))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Hand `msg` at `qos` to session `idx`: send now, queue it (window
    /// full or client offline), or drop it (queue full, or QoS 0 offline).
    pub(super) fn deliver(
        &mut self,
        now: SimTime,
        idx: SessionIdx,
        msg: &Arc<Msg>,
        qos: QoS,
        retain: bool,
    ) {
        let max_inflight = self.config.max_inflight.max(1);
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        match s.conn {
            Some(conn) if qos == QoS::AtMostOnce => {
                self.outq.push_back((
                    conn,
                    Out::Publish {
                        msg: msg.clone(),
                        qos_pid: QosPid::AtMostOnce,
                        retain,
                        dup: false,
                    },
                ));
                return;
            }
            Some(conn) if s.inflight.len() < max_inflight && s.queue.is_empty() => {
                if self.config.mutant_skip_qos1
                    && qos == QoS::AtLeastOnce
                    && self.stats.publishes_sent % 5 == 4
                {
                    // the test-only broken broker: this copy is never sent
                    self.stats.publishes_sent += 1;
                    return;
                }
                self.send_new(now, idx, conn, msg.clone(), qos, retain);
                return;
            }
            None if qos == QoS::AtMostOnce && !self.config.queue_qos0_offline => {
                self.stats.dropped_qos0_offline += 1;
                let ev = BrokerEvent::Dropped {
                    client_id: s.client_id.clone(),
                    topic: msg.topic.clone(),
                    qos,
                };
                self.events.push_back(ev);
                return;
            }
            _ => {}
        }
        if s.queue.len() >= self.config.max_queued {
            self.stats.dropped_queue_full += 1;
            let ev = BrokerEvent::Dropped {
                client_id: s.client_id.clone(),
                topic: msg.topic.clone(),
                qos,
            };
            self.events.push_back(ev);
            return;
        }
        s.queue.push_back(Pending {
            msg: msg.clone(),
            qos,
            retain,
        });
    }

    /// First transmission of a QoS 1/2 message: new packet identifier,
    /// into the in-flight window.
    fn send_new(
        &mut self,
        now: SimTime,
        idx: SessionIdx,
        conn: ConnId,
        msg: Arc<Msg>,
        qos: QoS,
        retain: bool,
    ) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        let pid = s.alloc_pid();
        s.inflight.push(Outbound {
            pid,
            msg: msg.clone(),
            qos,
            retain,
            state: if qos == QoS::AtLeastOnce {
                OutState::AwaitAck
            } else {
                OutState::AwaitRec
            },
            sent_at: now,
        });
        self.outq.push_back((
            conn,
            Out::Publish {
                msg,
                qos_pid: QosPid::new(qos, pid),
                retain,
                dup: false,
            },
        ));
        if let Some(r) = self.config.legacy_retry {
            self.retry_timers.insert((now + r, idx));
        }
    }

    /// Move queued messages into the in-flight window while it has room.
    pub(super) fn drain(&mut self, now: SimTime, idx: SessionIdx) {
        let max_inflight = self.config.max_inflight.max(1);
        loop {
            let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
                return;
            };
            let Some(conn) = s.conn else { return };
            let next_qos0 = s.queue.front().is_some_and(|p| p.qos == QoS::AtMostOnce);
            if !next_qos0 && s.inflight.len() >= max_inflight {
                return;
            }
            let Some(p) = s.queue.pop_front() else { return };
            if p.qos == QoS::AtMostOnce {
                self.outq.push_back((
                    conn,
                    Out::Publish {
                        msg: p.msg,
                        qos_pid: QosPid::AtMostOnce,
                        retain: p.retain,
                        dup: false,
                    },
                ));
            } else {
                self.send_new(now, idx, conn, p.msg, p.qos, p.retain);
            }
        }
    }

    /// Reconnection of a persistent session (§4.4): resend every
    /// unacknowledged PUBLISH with DUP = 1 and every PUBREL, with their
    /// original identifiers and in their original order [MQTT-4.4.0-1],
    /// then fill the window from the queue.
    pub(super) fn resume(&mut self, now: SimTime, idx: SessionIdx, conn: ConnId) {
        self.resend(now, idx, conn, None);
        self.drain(now, idx);
    }

    /// Resend in-flight messages of `idx` (all, or with `older_than` only
    /// those last sent at or before it).
    fn resend(&mut self, now: SimTime, idx: SessionIdx, conn: ConnId, older_than: Option<SimTime>) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        for o in s.inflight.iter_mut() {
            if older_than.is_some_and(|t| o.sent_at > t) {
                continue;
            }
            o.sent_at = now;
            let out = match o.state {
                OutState::AwaitAck | OutState::AwaitRec => Out::Publish {
                    msg: o.msg.clone(),
                    qos_pid: QosPid::new(o.qos, o.pid),
                    retain: o.retain,
                    dup: true, // [MQTT-3.3.1-1]
                },
                OutState::AwaitComp => Out::Ack {
                    ty: PacketType::PubRel,
                    pid: o.pid,
                    retransmission: true,
                },
            };
            self.outq.push_back((conn, out));
        }
        if let (Some(r), false) = (self.config.legacy_retry, s.inflight.is_empty()) {
            let next = s.inflight.iter().map(|o| o.sent_at).min().unwrap_or(now) + r;
            self.retry_timers.insert((next, idx));
        }
    }

    /// `legacy_retry` (not MQTT 3.1.1): resend what has waited too long.
    pub(super) fn legacy_resend(&mut self, now: SimTime, idx: SessionIdx) {
        let Some(r) = self.config.legacy_retry else {
            return;
        };
        let Some(conn) = self.session(idx).and_then(|s| s.conn) else {
            return; // offline: §4.4 resend happens on reconnection
        };
        let cutoff = SimTime::from_nanos(now.as_nanos().saturating_sub(r.as_nanos()));
        self.resend(now, idx, conn, Some(cutoff));
    }

    /// Publish the retained `$SYS/broker/...` statistics (QoS 0).
    pub(super) fn publish_sys(&mut self, now: SimTime) {
        let connected = self.stats.clients_connected;
        let disconnected = self.stats.clients_disconnected;
        let sent = self.stats.packets_sent.saturating_sub(self.sent_at_start);
        let uptime = (now - self.started_at).as_nanos() / 1_000_000_000;
        let items = [
            ("$SYS/broker/clients/connected", connected.to_string()),
            ("$SYS/broker/clients/disconnected", disconnected.to_string()),
            (
                "$SYS/broker/clients/total",
                (connected + disconnected).to_string(),
            ),
            ("$SYS/broker/messages/sent", sent.to_string()),
            ("$SYS/broker/uptime", format!("{uptime} seconds")),
        ];
        for (topic, value) in items {
            let Ok(topic) = TopicName::new(topic) else {
                continue;
            };
            let msg = Arc::new(Msg {
                topic,
                payload: Arc::from(value.into_bytes()),
                qos: QoS::AtMostOnce,
            });
            self.route(now, msg, true);
        }
    }
}
