//! Stateful fuzz target `broker`: the input is a script of actions played
//! against one real [`Broker`] by four model clients (client ids `c0`..`c3`;
//! `c0`, `c2` speak MQTT 3.1.1, `c1`, `c3` MQTT 5.0; `c0`, `c1` use plain
//! and wildcard subscriptions, `c2`, `c3` the one shared subscription
//! `$share/g/s/#`, so that every session gets at most one copy of a
//! message, §3.3.5).
//!
//! Layout: byte 0 picks the broker configuration (bit 0 QoS 2 forwarded on
//! PUBLISH instead of PUBREL, bit 1 `legacy_retry` 5 s, bits 2–3 in-flight
//! window 1–4, bits 4–6 queue 1–8, bit 7 QoS 0 queued offline); then each
//! action is an opcode byte (`op % 12`) and its argument bytes (see
//! [`run`]). Bytes the broker sends are held per connection and reach the
//! model client only on a "deliver" action, so acknowledgements can be
//! withheld and a dropped connection loses what was still on its way.
//!
//! Invariants (a panic reports a broken one):
//! * every packet the broker emits decodes, with the codec of the version
//!   that connection's CONNECT named, to exactly the length reported;
//! * a QoS 2 message (a payload `QoS2` + 4-byte tag, unique per publish) is
//!   delivered at most once per subscriber session: a PUBLISH QoS 2 whose
//!   packet identifier the client does not hold (no PUBREL seen yet) and
//!   whose RETAIN flag is 0 is a delivery (RFC-style receiver "method B",
//!   MQTT 3.1.1 figure 4.3); a session that CONNACK says is new starts
//!   empty;
//! * every session's in-flight count is within the configured window and
//!   its queue within the configured maximum;
//! * nothing panics.
//!
//! Raw bytes from the input can be written to a connection; a PUBLISH they
//! make could legitimately repeat a model payload, so every tag that
//! appears in bytes written to a connection that carried raw bytes is
//! excluded from the at-most-once check.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::proto::mqtt::v5::{
    self, Ack5, Connect5, Packet5, Properties, Publish5, ReasonOnly, SubOptions, Subscribe5,
    Unsubscribe5,
};
use crate::proto::mqtt::{
    self as mqtt, Ack, Broker, BrokerConfig, BrokerEvent, BrokerInput, ConnId, Connect, Packet,
    PacketId, ProtocolLevel, Publish, QoS, Qos2Forward, QosPid, Subscribe, TopicFilter, TopicName,
    Unsubscribe,
};
use crate::sim::{SimDuration, SimTime};

use super::Script;

const SLOTS: usize = 4;
const MAGIC: &[u8; 4] = b"QoS2";
const TOPICS: [&str; 5] = ["t/a", "t/b", "t/a/x", "s/a", "s/b"];
const FILTERS: [&str; 7] = ["t/a", "t/+", "t/#", "#", "+/a", "t/a/x", "s/#"];
const SHARED: &str = "$share/g/s/#";

/// Deliberate faults, so tests can show that each check fires.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrokerFaults {
    /// `BrokerConfig::mutant_forget_qos2`: the broker forgets QoS 2
    /// packet identifiers it received, so a DUP is forwarded again.
    pub forget_qos2: bool,
    /// Check the in-flight count against a window one smaller than the
    /// broker's.
    pub tighter_window: bool,
    /// Check the queue against a maximum one smaller than the broker's.
    pub tighter_queue: bool,
    /// Decode what a 5.0 connection receives with the 3.1.1 codec.
    pub wrong_codec: bool,
}

/// A packet the broker sent, as the model client needs it.
#[derive(Debug)]
enum In {
    ConnAck { ok: bool, session_present: bool },
    Publish(QoS, Option<u16>, bool, Vec<u8>),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Other,
}

#[derive(Debug)]
struct ConnModel {
    v5: bool,
    /// The client read a CONNACK accepting it here: it may resend and
    /// acknowledge what its session holds (before that it cannot know
    /// whether the server kept the session).
    ready: bool,
    open: bool,
    inbox: VecDeque<In>,
    /// Raw bytes were written: tags in anything written are not checked.
    raw: bool,
    /// The client opened a newer connection: what still arrives here is
    /// decoded (and checked) but never read.
    abandoned: bool,
    /// The last 7 bytes written, for tags split across writes.
    tail: Vec<u8>,
}

/// A model client's session state (what MQTT keeps client-side).
#[derive(Debug, Default)]
struct SessionModel {
    /// QoS 2 packet identifiers received, PUBREL not yet seen.
    held: BTreeSet<u16>,
    /// Tags delivered to the application in this session.
    delivered: BTreeSet<u32>,
    /// Acknowledgements to send: (packet type, identifier).
    acks: VecDeque<(u8, u16)>,
    /// Own QoS 1/2 publishes not completed: id → (tag, topic, QoS, PUBREC
    /// seen).
    out: BTreeMap<u16, (u32, usize, QoS, bool)>,
    /// Raw bytes were written in this session: they may have subscribed
    /// it to overlapping filters, so it gets no at-most-once check.
    unchecked: bool,
    next_pid: u16,
}

struct Model {
    broker: Broker,
    now: SimTime,
    faults: BrokerFaults,
    window: usize,
    queue: usize,
    conns: BTreeMap<ConnId, ConnModel>,
    current: [Option<ConnId>; SLOTS],
    sessions: [SessionModel; SLOTS],
    next_conn: u64,
    next_tag: u32,
    tainted: BTreeSet<u32>,
    buf: Vec<u8>,
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v.max(1)).unwrap_or_else(|| unreachable!())
}

fn tag_of(payload: &[u8]) -> Option<u32> {
    let t = payload.strip_prefix(MAGIC)?;
    Some(u32::from_be_bytes(t.try_into().ok()?))
}

fn qos(b: u8) -> QoS {
    QoS::from_u8(b % 3).unwrap_or(QoS::AtMostOnce)
}

impl Model {
    fn new(cfg_byte: u8, faults: BrokerFaults) -> Model {
        let config = BrokerConfig {
            qos2_forward: if cfg_byte & 1 != 0 {
                Qos2Forward::OnPublish
            } else {
                Qos2Forward::OnPubrel
            },
            legacy_retry: (cfg_byte & 2 != 0).then(|| SimDuration::from_secs(5)),
            max_inflight: 1 + usize::from((cfg_byte >> 2) & 3),
            max_queued: 1 + usize::from((cfg_byte >> 4) & 7),
            queue_qos0_offline: cfg_byte & 0x80 != 0,
            sys_interval: None,
            mutant_forget_qos2: faults.forget_qos2,
            ..BrokerConfig::default()
        };
        let window = config.max_inflight - usize::from(faults.tighter_window);
        let queue = config.max_queued - usize::from(faults.tighter_queue);
        Model {
            broker: Broker::new(config, SimTime::ZERO),
            now: SimTime::ZERO,
            faults,
            window,
            queue,
            conns: BTreeMap::new(),
            current: [None; SLOTS],
            sessions: Default::default(),
            next_conn: 0,
            next_tag: 0,
            tainted: BTreeSet::new(),
            buf: Vec::new(),
        }
    }

    fn v5(slot: usize) -> bool {
        slot % 2 == 1
    }

    /// Write `bytes` on `conn` (open) and collect what follows.
    fn write(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| c.open) else {
            return;
        };
        if c.raw {
            let mut window = std::mem::take(&mut c.tail);
            window.extend_from_slice(bytes);
            for w in window.windows(8) {
                if let Some(t) = tag_of(w) {
                    self.tainted.insert(t);
                }
            }
            let keep = window.len().saturating_sub(7);
            c.tail = window.split_off(keep);
        }
        self.broker
            .handle_input(self.now, BrokerInput::bytes(conn, bytes));
        self.pump();
    }

    /// Send a packet built by the model on `slot`'s current connection.
    fn send(&mut self, slot: usize, p3: Packet, p5: Packet5) {
        let Some(conn) = self.current[slot] else {
            return;
        };
        let mut bytes = Vec::new();
        let r = if Self::v5(slot) {
            p5.encode(&mut bytes)
        } else {
            p3.encode(&mut bytes)
        };
        r.unwrap_or_else(|e| panic!("model packet does not encode: {e}"));
        self.write(conn, &bytes);
    }

    /// Drain the broker's output, decoding every packet, then its events.
    fn pump(&mut self) {
        loop {
            self.buf.clear();
            let Some(t) = self.broker.poll_transmit(self.now, &mut self.buf) else {
                break;
            };
            assert_eq!(t.len, self.buf.len(), "transmit length != bytes written");
            let Some(c) = self.conns.get_mut(&t.conn) else {
                panic!("broker sent on unknown connection {:?}", t.conn);
            };
            let decoded = decode(&self.buf, c.v5 && !self.faults.wrong_codec);
            if !c.abandoned {
                c.inbox.push_back(decoded);
            }
        }
        while let Some(e) = self.broker.poll_event() {
            if let BrokerEvent::Close(conn) = e {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.open = false;
                }
            }
        }
        self.check_limits();
    }

    fn check_limits(&self) {
        for i in 0..SLOTS {
            if let Some(s) = self.broker.session_info(&format!("c{i}")) {
                assert!(
                    s.inflight <= self.window,
                    "session c{i}: {} in flight, window {}",
                    s.inflight,
                    self.window
                );
                assert!(
                    s.queued <= self.queue,
                    "session c{i}: {} queued, maximum {}",
                    s.queued,
                    self.queue
                );
            }
        }
    }

    fn connect(&mut self, slot: usize, flags: u8) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let v5 = Self::v5(slot);
        if let Some(old) = self.current[slot].and_then(|c| self.conns.get_mut(&c)) {
            old.abandoned = true;
            old.inbox.clear();
        }
        self.conns.insert(
            conn,
            ConnModel {
                v5,
                ready: false,
                open: true,
                inbox: VecDeque::new(),
                raw: false,
                abandoned: false,
                tail: Vec::new(),
            },
        );
        self.current[slot] = Some(conn);
        self.broker
            .handle_input(self.now, BrokerInput::accepted(conn));
        self.pump();
        let clean = flags & 1 != 0;
        let keep_alive = [0, 5, 30, 60][usize::from((flags >> 1) & 3)];
        let client_id = format!("c{slot}");
        let p3 = Packet::Connect(Connect {
            protocol: ProtocolLevel::V311,
            clean_session: clean,
            keep_alive,
            client_id: client_id.clone(),
            will: None,
            username: None,
            password: None,
        });
        let props = Properties {
            session_expiry_interval: (flags & 8 != 0).then_some(60),
            receive_maximum: (flags & 0x10 != 0).then_some(u16::from((flags >> 5) & 3) + 1),
            ..Properties::default()
        };
        let p5 = Packet5::Connect(Connect5 {
            clean_start: clean,
            keep_alive,
            props,
            client_id,
            will: None,
            username: None,
            password: None,
        });
        self.send(slot, p3, p5);
    }

    fn subscribe(&mut self, slot: usize, arg: u8, unsubscribe: bool) {
        let f = if slot >= 2 {
            SHARED
        } else {
            FILTERS[usize::from(arg) % FILTERS.len()]
        };
        let f = TopicFilter::new(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let q = qos(arg >> 4);
        let id = self.next_pid(slot);
        let (p3, p5) = if unsubscribe {
            (
                Packet::Unsubscribe(Unsubscribe {
                    pid: pid(id),
                    filters: vec![f.clone()],
                }),
                Packet5::Unsubscribe(Unsubscribe5 {
                    pid: pid(id),
                    props: Properties::default(),
                    filters: vec![f],
                }),
            )
        } else {
            (
                Packet::Subscribe(Subscribe {
                    pid: pid(id),
                    filters: vec![(f.clone(), q)],
                }),
                Packet5::Subscribe(Subscribe5 {
                    pid: pid(id),
                    props: Properties::default(),
                    filters: vec![(f, SubOptions::qos(q))],
                }),
            )
        };
        self.send(slot, p3, p5);
    }

    fn next_pid(&mut self, slot: usize) -> u16 {
        let s = &mut self.sessions[slot];
        loop {
            s.next_pid = s.next_pid.wrapping_add(1).max(1);
            if !s.out.contains_key(&s.next_pid) {
                return s.next_pid;
            }
        }
    }

    fn publish(&mut self, slot: usize, arg: u8) {
        let topic = usize::from(arg) % TOPICS.len();
        let q = qos(arg >> 3);
        let retain = arg & 0x20 != 0;
        let tag = self.next_tag;
        self.next_tag += 1;
        let id = if q == QoS::AtMostOnce {
            None
        } else {
            let id = self.next_pid(slot);
            self.sessions[slot].out.insert(id, (tag, topic, q, false));
            Some(id)
        };
        self.send_publish(slot, TOPICS[topic], q, id, tag, retain, false);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_publish(
        &mut self,
        slot: usize,
        topic: &str,
        q: QoS,
        id: Option<u16>,
        tag: u32,
        retain: bool,
        dup: bool,
    ) {
        let mut payload = MAGIC.to_vec();
        payload.extend_from_slice(&tag.to_be_bytes());
        let payload: Arc<[u8]> = payload.into();
        let topic = TopicName::new(topic).unwrap_or_else(|e| panic!("{topic}: {e}"));
        let qos_pid = id.map_or(QosPid::AtMostOnce, |i| QosPid::new(q, pid(i)));
        let p3 = Packet::Publish(Publish {
            dup,
            qos_pid,
            retain,
            topic: topic.clone(),
            payload: payload.clone(),
        });
        let p5 = Packet5::Publish(Publish5 {
            dup,
            qos_pid,
            retain,
            topic: Some(topic),
            props: Properties::default(),
            payload,
        });
        self.send(slot, p3, p5);
    }

    /// Resend the oldest own publish still waiting for PUBACK/PUBREC.
    fn resend(&mut self, slot: usize) {
        if !self.ready(slot) {
            return;
        }
        let Some((&id, &(tag, topic, q, _))) = self.sessions[slot].out.iter().find(|(_, o)| !o.3)
        else {
            return;
        };
        self.send_publish(slot, TOPICS[topic], q, Some(id), tag, false, true);
    }

    fn ready(&self, slot: usize) -> bool {
        self.current[slot]
            .and_then(|c| self.conns.get(&c))
            .is_some_and(|c| c.ready)
    }

    fn flush_acks(&mut self, slot: usize, n: u8) {
        if !self.ready(slot) {
            return;
        }
        for _ in 0..n {
            let Some((ty, id)) = self.sessions[slot].acks.pop_front() else {
                return;
            };
            let a = Ack { pid: pid(id) };
            let a5 = Ack5::ok(pid(id));
            let (p3, p5) = match ty {
                4 => (Packet::PubAck(a), Packet5::PubAck(a5)),
                5 => (Packet::PubRec(a), Packet5::PubRec(a5)),
                6 => (Packet::PubRel(a), Packet5::PubRel(a5)),
                _ => (Packet::PubComp(a), Packet5::PubComp(a5)),
            };
            self.send(slot, p3, p5);
        }
    }

    /// The model client of `slot` reads up to `n` packets from its
    /// connection.
    fn deliver(&mut self, slot: usize, n: u8) {
        let Some(conn) = self.current[slot] else {
            return;
        };
        for _ in 0..n {
            let Some(p) = self.conns.get_mut(&conn).and_then(|c| c.inbox.pop_front()) else {
                break;
            };
            if let In::ConnAck { ok: true, .. } = p {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.ready = true;
                }
            }
            self.receive(slot, p);
        }
        self.conns.retain(|_, c| c.open || !c.inbox.is_empty());
    }

    fn receive(&mut self, slot: usize, p: In) {
        let s = &mut self.sessions[slot];
        match p {
            In::ConnAck {
                ok: true,
                session_present,
            } if !session_present => {
                *s = SessionModel {
                    next_pid: s.next_pid,
                    ..SessionModel::default()
                };
            }
            In::Publish(QoS::ExactlyOnce, Some(id), retain, payload) => {
                if s.held.insert(id) && !retain && !s.unchecked {
                    if let Some(t) = tag_of(&payload).filter(|t| !self.tainted.contains(t)) {
                        assert!(
                            s.delivered.insert(t),
                            "QoS 2 message {t} delivered twice to session c{slot}"
                        );
                    }
                }
                s.acks.push_back((5, id));
            }
            In::Publish(QoS::AtLeastOnce, Some(id), _, _) => s.acks.push_back((4, id)),
            In::PubRel(id) => {
                s.held.remove(&id);
                s.acks.push_back((7, id));
            }
            In::PubAck(id) | In::PubComp(id) => {
                s.out.remove(&id);
            }
            In::PubRec(id) => {
                if let Some(o) = s.out.get_mut(&id) {
                    o.3 = true;
                    s.acks.push_back((6, id));
                }
            }
            _ => {}
        }
    }

    fn advance(&mut self, b: u8) {
        self.now += SimDuration::from_millis((u64::from(b) + 1) * 250);
        while let Some(t) = self.broker.poll_timeout().filter(|t| *t <= self.now) {
            self.broker.handle_timeout(t.max(self.now));
            self.pump();
            if self.broker.poll_timeout() == Some(t) {
                break;
            }
        }
    }
}

/// Decode one emitted packet with the 3.1.1 or the 5.0 codec; it must be
/// whole and exactly as long as written.
fn decode(buf: &[u8], v5: bool) -> In {
    let id = |p: PacketId| p.get();
    if v5 {
        let (p, n) = match v5::decode(buf, usize::MAX) {
            Ok(Some(x)) => x,
            r => panic!("emitted 5.0 packet does not decode: {r:?} {buf:02x?}"),
        };
        assert_eq!(n, buf.len(), "5.0 packet length");
        match p {
            Packet5::ConnAck(c) => In::ConnAck {
                ok: !c.reason.is_failure(),
                session_present: c.session_present,
            },
            Packet5::Publish(p) => In::Publish(
                p.qos_pid.qos(),
                p.qos_pid.pid().map(id),
                p.retain,
                p.payload.to_vec(),
            ),
            Packet5::PubAck(a) => In::PubAck(id(a.pid)),
            Packet5::PubRec(a) => In::PubRec(id(a.pid)),
            Packet5::PubRel(a) => In::PubRel(id(a.pid)),
            Packet5::PubComp(a) => In::PubComp(id(a.pid)),
            _ => In::Other,
        }
    } else {
        let (p, n) = match mqtt::decode(buf, usize::MAX) {
            Ok(Some(x)) => x,
            r => panic!("emitted 3.1.1 packet does not decode: {r:?} {buf:02x?}"),
        };
        assert_eq!(n, buf.len(), "3.1.1 packet length");
        match p {
            Packet::ConnAck(c) => In::ConnAck {
                ok: c.code == mqtt::ConnectReturnCode::Accepted,
                session_present: c.session_present,
            },
            Packet::Publish(p) => In::Publish(
                p.qos_pid.qos(),
                p.qos_pid.pid().map(id),
                p.retain,
                p.payload.to_vec(),
            ),
            Packet::PubAck(a) => In::PubAck(id(a.pid)),
            Packet::PubRec(a) => In::PubRec(id(a.pid)),
            Packet::PubRel(a) => In::PubRel(id(a.pid)),
            Packet::PubComp(a) => In::PubComp(id(a.pid)),
            _ => In::Other,
        }
    }
}

/// Play `data` against a broker with `faults` (none for the fuzz target).
///
/// Actions (opcode `% 12`, then arguments; a missing byte reads as 0):
/// 0 connect `slot flags` (bit 0 clean, bits 1–2 keep alive 0/5/30/60 s,
/// bit 3 session expiry 60 s (5.0), bit 4 Receive Maximum, bits 5–6 its
/// value − 1); 1 subscribe `slot arg` (filter `arg % 7`, QoS `arg >> 4`);
/// 2 unsubscribe `slot arg`; 3 publish `slot arg` (topic `arg % 5`, QoS
/// `arg >> 3`, bit 5 retain); 4 resend the oldest unacknowledged own
/// publish with DUP `slot`; 5 send up to `n` pending acks `slot n`;
/// 6 the client reads up to `n` packets `slot n`; 7 DISCONNECT `slot`;
/// 8 drop the connection (what it still carried is lost) `slot`;
/// 9 advance time by `(b + 1) × 250 ms` `b`; 10 raw bytes `slot len bytes…`;
/// 11 PINGREQ `slot`.
pub fn run(data: &[u8], faults: BrokerFaults) {
    let mut s = Script::new(data);
    let mut m = Model::new(s.byte(), faults);
    while !s.done() {
        let op = s.byte() % 12;
        let slot = usize::from(s.byte()) % SLOTS;
        match op {
            0 => m.connect(slot, s.byte()),
            1 => m.subscribe(slot, s.byte(), false),
            2 => m.subscribe(slot, s.byte(), true),
            3 => m.publish(slot, s.byte()),
            4 => m.resend(slot),
            5 => m.flush_acks(slot, s.byte()),
            6 => m.deliver(slot, s.byte()),
            7 => m.send(
                slot,
                Packet::Disconnect,
                Packet5::Disconnect(ReasonOnly::default()),
            ),
            8 => {
                if let Some(conn) = m.current[slot].take() {
                    if m.conns.remove(&conn).is_some_and(|c| c.open) {
                        m.broker.handle_input(m.now, BrokerInput::closed(conn));
                        m.pump();
                    }
                }
            }
            9 => m.advance(s.byte()),
            10 => {
                let n = usize::from(s.byte());
                let bytes = s.take(n).to_vec();
                if let Some(conn) = m.current[slot] {
                    if let Some(c) = m.conns.get_mut(&conn) {
                        c.raw = true;
                    }
                    m.sessions[slot].unchecked = true;
                    m.write(conn, &bytes);
                }
            }
            _ => m.send(slot, Packet::PingReq, Packet5::PingReq),
        }
    }
}
