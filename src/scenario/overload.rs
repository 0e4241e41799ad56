//! Warnings about load concentrations that lose messages in this model
//! (issue 22 item 5; README.md "Warnings"). Periodic publishers are not
//! in phase here (each draws its phase from its own stream, plus the
//! flow's `jitter`), so what concentrates load is a window or a server
//! that many clients share:
//!
//! * **The in-flight window to a subscriber.** A broker keeps at most
//!   `[protocols.mqtt] max_inflight` unacknowledged QoS 1/2 messages per
//!   subscriber; each leaves the window one round trip (QoS 1: PUBLISH →
//!   PUBACK) or two (QoS 2) after it was sent. A subscriber therefore
//!   receives at most `max_inflight` / RTT QoS 1 messages per second; what
//!   arrives faster waits in the broker's queue for it (`max_queued`) and,
//!   once that is full, is dropped (`dropped_queue_full` in mqtt.csv). This
//!   is what limited the fan-in benchmark at 100,000 publishers (10,000
//!   messages/s to one subscriber): about three quarters of the readings
//!   were dropped at the broker while its processor was busy a sixth of
//!   the time. The round trip is estimated from the static topology: the
//!   fewest-hop chain of links between broker and subscriber, each crossed
//!   both ways (propagation delay, and the serialisation of a PUBLISH one
//!   way and its acknowledgement the other), plus the broker's mean
//!   processing of the PUBLISH it sends and the acknowledgement it
//!   receives. Queueing and loss are left out, so this is a lower bound on
//!   the round trip and the delivered share it implies an upper bound.
//!   TCP lengthens it: Nagle's algorithm (on unless `[protocols.tcp]
//!   nagle = false`) holds a small segment (a PUBLISH, a PUBACK) while an
//!   earlier one is unacknowledged, so a message holds the window for
//!   about two round trips; the warning fires when the window is less
//!   than 1.25 times the messages in flight so estimated, and suggests
//!   1.5 times. Measured (tests/overload_warnings.rs): 2,000 messages/s
//!   over a 22 ms round trip (about 88 in flight) delivered 27 % with a
//!   window of 20 (estimate 23 %), 59 % with 60 (68 %), 98.4 % with 90,
//!   all with 120 and more; the fan-in benchmark at 100,000 publishers
//!   (10,000/s over 4 ms, window 20) delivered 25 % (estimate 25 %), and
//!   at 10,000 publishers (1,000/s, 8 in flight) everything. Subscribers
//!   reached through a shared medium are not estimated (no warning).
//! * **The connect storm.** MQTT clients first connect at a uniform time
//!   in `[0, connect_spread)`; the broker's host stack takes each client's
//!   SYN, ACK and CONNECT (`stack_rx`) and sends its SYN-ACK and CONNACK
//!   (`stack_tx`) one after another (the service time is charged per
//!   PUBLISH, not per CONNECT). When accepting them all takes longer than
//!   `connect_spread` + `connect_timeout`, the last clients wait longer
//!   than `connect_timeout`, give up, back off and connect again, which
//!   only adds to the broker's backlog. Measured
//!   (tests/overload_warnings.rs): 2,001 clients within 1 s at 6 ms of
//!   broker stack time each (12 s in all): 432 of them connected in 40 s
//!   and nothing was delivered; spread over 25 s, all connected. Below the
//!   bound the storm only queues. The keep-alive PINGREQs of clients that
//!   connected together stay bunched the same way.
//! * **A saturated broker.** The steady publishing load a broker is offered
//!   (PUBLISH/s in from its publishers, copies/s out to the subscribers)
//!   against its processing times: the application server's work
//!   (`service` per PUBLISH in, `per_copy` per copy out) and each stack
//!   side's packets (PUBLISHes and their MQTT acknowledgements; TCP's own
//!   ACKs are left out, so the load is a lower bound). When one of them
//!   needs more than all of the broker's time (utilisation ρ ≥ 1), its
//!   queue grows through the run, and latency with it, until full
//!   (`queue`, `stack_queue`); then it drops, TCP retransmits and adds
//!   load. At most about 1/ρ of the messages can get through. This is what
//!   the fan-in benchmark ran into at a million publishers (100,000
//!   PUBLISH/s against 35 µs each, ρ = 3.5).

use super::error::Warning;
use super::model::{FlowSpec, Pattern, Protocol, Reliability, Scenario, Timing};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// IPv4 + TCP headers of a segment (no options).
const TCP_IP_HEADERS: u64 = 40;
/// A PUBACK (or PUBREC, PUBREL, PUBCOMP): fixed header and packet id.
const ACK_BYTES: u64 = 4;

/// The window must exceed the messages in flight by this factor, or the
/// warning fires: near a full window the queue absorbs the bursts of
/// randomly phased publishers only just (measured, tests/overload_warnings.rs:
/// 1.6 % dropped at 1.02 × the estimate, none at 1.36 ×).
const BURST_ROOM: f64 = 1.25;
/// The window the warning suggests, relative to the messages in flight.
const SUGGESTED_ROOM: f64 = 1.5;

/// One (broker, subscriber) pair's offered QoS 1/2 load.
#[derive(Default)]
struct Offer {
    /// Messages per second, by round trips each holds the window for (1 or 2).
    per_s: [f64; 2],
    /// Largest PUBLISH on the wire (bytes, headers included).
    publish_bytes: u64,
    /// Flows contributing, file order, without repeats.
    flows: Vec<String>,
}

/// The warnings of both kinds, window first.
pub fn warnings(sc: &Scenario) -> Vec<Warning> {
    let mut w = window(sc);
    w.extend(connect_storm(sc));
    w.extend(saturation(sc));
    w
}

/// Messages per second each publisher of `f` sends (None: bulk).
fn rate(f: &FlowSpec) -> Option<f64> {
    let gap = match f.timing {
        Timing::Periodic { interval, .. } => interval,
        Timing::Poisson { mean_interval } => mean_interval,
        Timing::Bulk => return None,
    };
    Some(1e9 / gap.as_nanos().max(1) as f64)
}

/// How many of `f`'s publishers send to its `k`-th receiver `r`.
fn senders(f: &FlowSpec, k: usize, r: usize) -> usize {
    match f.pattern {
        Pattern::PointToPoint => usize::from(k < f.publishers.len()),
        Pattern::Broadcast | Pattern::FanIn => f.publishers.iter().filter(|&&p| p != r).count(),
    }
}

/// Warnings for subscribers offered more QoS 1/2 messages per second than
/// the broker's in-flight window to them can carry, each at
/// `protocols.mqtt.max_inflight`.
fn window(sc: &Scenario) -> Vec<Warning> {
    let mut offers: BTreeMap<(usize, usize), Offer> = BTreeMap::new();
    for f in &sc.flows {
        let exchanges = match f.reliability {
            Reliability::Qos1 => 1,
            Reliability::Qos2 => 2,
            _ => continue,
        };
        let Some(broker) = f.broker else { continue };
        if f.subscribe_with != Protocol::Mqtt {
            continue;
        }
        let Some(per_publisher) = rate(f) else {
            continue;
        };
        let topic = super::flows::topic_for(f, &sc.nodes, 0).len();
        let bytes = u64::from(f.payload_bytes) + topic as u64 + 6 + TCP_IP_HEADERS;
        for (k, &r) in f.receivers.iter().enumerate() {
            let senders = senders(f, k, r);
            if senders == 0 {
                continue;
            }
            let o = offers.entry((broker, r)).or_default();
            o.per_s[exchanges - 1] += senders as f64 * per_publisher;
            o.publish_bytes = o.publish_bytes.max(bytes);
            if !o.flows.contains(&f.name) {
                o.flows.push(f.name.clone());
            }
        }
    }
    let mqtt = &sc.protocols.mqtt;
    let window = f64::from(mqtt.max_inflight.max(1));
    let mut out = Vec::new();
    let mut hops_from: BTreeMap<usize, Vec<Option<usize>>> = BTreeMap::new();
    for ((broker, sub), o) in &offers {
        let prev = hops_from
            .entry(*broker)
            .or_insert_with(|| link_tree(sc, *broker));
        let Some(path) = path_to(sc, prev, *broker, *sub) else {
            continue;
        };
        let mut rtt = 0.0;
        for &l in &path {
            let link = &sc.links[l];
            let bits = ((o.publish_bytes + ACK_BYTES + TCP_IP_HEADERS) * 8) as f64;
            rtt += 2.0 * link.delay.as_nanos() as f64 + bits * 1e9 / link.rate_bps.max(1) as f64;
        }
        if let Some(p) = sc.processing.get(broker) {
            rtt += (p.stack_tx.mean() + p.stack_rx.mean() + p.service.mean()).as_nanos() as f64;
        }
        let rtt_s = rtt / 1e9;
        if rtt_s <= 0.0 {
            continue;
        }
        // Nagle's algorithm holds a small segment (a PUBLISH, a PUBACK)
        // while an earlier one is unacknowledged: with it, a message holds
        // the window for about two round trips
        let rounds = if sc.protocols.tcp.config.nagle {
            2.0
        } else {
            1.0
        };
        // messages per second × round trips each holds the window
        let held = o.per_s[0] + 2.0 * o.per_s[1];
        let (need_low, need) = (held * rtt_s, held * rtt_s * rounds);
        if need * BURST_ROOM <= window {
            continue;
        }
        let offered = o.per_s[0] + o.per_s[1];
        let expect = if need > window {
            format!(
                "expect about {:.0} % delivered (at most {:.0} %)",
                100.0 * window / need,
                (100.0 * window / need_low).min(100.0)
            )
        } else {
            "expect drops in bursts (the window is more than four fifths full on average)"
                .to_string()
        };
        let field = "protocols.mqtt.max_inflight";
        out.push(Warning::at(&sc.origin, &sc.text, Some(field), format!(
            "subscriber {sub_name} is offered about {offered:.0} QoS 1/2 messages/s (flows {}) but the broker's in-flight window to it (protocols.mqtt.max_inflight = {}) frees a slot only when a message is acknowledged: a round trip of at least {:.1} ms (estimated: links both ways, serialisation, the broker's processing), {:.1} ms with Nagle's algorithm holding each small segment for the previous one's ACK, so it carries about {:.0} messages/s. The broker's queue for {sub_name} (max_queued {}) will overflow and drop (dropped_queue_full): {expect}. Raise max_inflight to at least {}, add subscribers, or use QoS 0",
            o.flows.join(", "),
            mqtt.max_inflight,
            rtt_s * 1e3,
            rtt_s * rounds * 1e3,
            (window * offered / need).min(offered),
            mqtt.max_queued,
            (need * SUGGESTED_ROOM).ceil() as u64,
            sub_name = sc.nodes[*sub].name,
        )));
    }
    out
}

/// Warnings for brokers that cannot accept their clients' first
/// connections within `connect_spread` + `connect_timeout`, each at
/// `protocols.mqtt.connect_spread`.
fn connect_storm(sc: &Scenario) -> Vec<Warning> {
    let mut clients: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for f in &sc.flows {
        let Some(broker) = f.broker else { continue };
        let c = clients.entry(broker).or_default();
        if f.protocol == Protocol::Mqtt {
            c.extend(f.publishers.iter().filter(|&&p| p != broker));
        }
        if f.subscribe_with == Protocol::Mqtt {
            c.extend(f.receivers.iter().filter(|&&r| r != broker));
        }
    }
    let mqtt = &sc.protocols.mqtt;
    let mut out = Vec::new();
    for (broker, c) in &clients {
        let Some(p) = sc.processing.get(broker) else {
            continue;
        };
        let ns = |d: crate::sim::Delay| d.mean().as_nanos() as f64;
        // SYN, ACK and CONNECT in; SYN-ACK and CONNACK out
        let per_client = (3.0 * ns(p.stack_rx)).max(2.0 * ns(p.stack_tx));
        let busy = c.len() as f64 * per_client / 1e9;
        let spread = mqtt.connect_spread.as_nanos() as f64 / 1e9;
        let timeout = mqtt.connect_timeout.as_nanos() as f64 / 1e9;
        if busy <= spread + timeout {
            continue;
        }
        out.push(Warning::at(&sc.origin, &sc.text, Some("protocols.mqtt.connect_spread"), format!(
            "{} MQTT clients first connect within protocols.mqtt.connect_spread = {}, but broker {} needs about {busy:.1} s to accept them ({:.0} µs each: three packets in at stack_rx, two out at stack_tx): the last would wait about {:.1} s, longer than connect_timeout {}, so they give up and connect again, adding to the backlog: expect fewer connects than clients in mqtt.csv and little or nothing delivered, and keep-alive PINGREQs bunched the same way. Spread the first connections: connect_spread = \"{:.0} s\" or more",
            c.len(),
            mqtt.connect_spread,
            sc.nodes[*broker].name,
            per_client / 1e3,
            busy - spread,
            mqtt.connect_timeout,
            (2.0 * busy).ceil(),
        )));
    }
    out
}

/// One broker's steady load, per second.
#[derive(Default)]
struct BrokerLoad {
    publishes: f64,
    copies: f64,
    /// Packets in and out at its stack (PUBLISHes and MQTT
    /// acknowledgements).
    packets_in: f64,
    packets_out: f64,
    flows: Vec<String>,
}

/// Warnings for brokers whose application server or a stack side is
/// offered more work than time, each at the broker's `processing`.
fn saturation(sc: &Scenario) -> Vec<Warning> {
    let mut loads: BTreeMap<usize, BrokerLoad> = BTreeMap::new();
    for f in &sc.flows {
        let Some(broker) = f.broker else { continue };
        if f.protocol != Protocol::Mqtt {
            continue;
        }
        let Some(per_publisher) = rate(f) else {
            continue;
        };
        let publishers = f.publishers.iter().filter(|&&p| p != broker).count();
        let publishes = publishers as f64 * per_publisher;
        let mut copies = 0.0;
        if f.subscribe_with == Protocol::Mqtt {
            for (k, &r) in f.receivers.iter().enumerate() {
                copies += senders(f, k, r) as f64 * per_publisher;
            }
        }
        // MQTT acknowledgements per PUBLISH: in from a subscriber for each
        // copy, out to the publisher (QoS 2: PUBREC, PUBCOMP out and
        // PUBREL in on the publisher's side; the reverse on each copy's)
        let (acks_in, acks_out) = match f.reliability {
            Reliability::Qos1 => (copies, publishes),
            Reliability::Qos2 => (publishes + 2.0 * copies, 2.0 * publishes + copies),
            _ => (0.0, 0.0),
        };
        let l = loads.entry(broker).or_default();
        l.publishes += publishes;
        l.copies += copies;
        l.packets_in += publishes + acks_in;
        l.packets_out += copies + acks_out;
        if !l.flows.contains(&f.name) {
            l.flows.push(f.name.clone());
        }
    }
    let mut out = Vec::new();
    for (broker, l) in &loads {
        let Some(p) = sc.processing.get(broker) else {
            continue;
        };
        let s = |d: crate::sim::Delay| d.mean().as_nanos() as f64 / 1e9;
        let parts = [
            (
                l.publishes * s(p.service) + l.copies * s(p.per_copy),
                format!(
                    "its application server (service {} per PUBLISH in, per_copy {} per copy out; queue {} inputs)",
                    p.service, p.per_copy, p.queue
                ),
            ),
            (
                l.packets_in * s(p.stack_rx),
                format!(
                    "its stack's receive side (stack_rx {} per packet, at least {:.0} packets/s in; stack_queue {})",
                    p.stack_rx, l.packets_in, p.stack_queue
                ),
            ),
            (
                l.packets_out * s(p.stack_tx),
                format!(
                    "its stack's send side (stack_tx {} per packet, at least {:.0} packets/s out; stack_queue {})",
                    p.stack_tx, l.packets_out, p.stack_queue
                ),
            ),
        ];
        let Some((rho, what)) = parts
            .into_iter()
            .filter(|(rho, _)| *rho >= 1.0)
            .max_by(|a, b| a.0.total_cmp(&b.0))
        else {
            continue;
        };
        let name = &sc.nodes[*broker].name;
        out.push(Warning::at(
            &sc.origin,
            &sc.text,
            Some(&format!("nodes.{name}.processing")),
            format!(
                "broker {name} is offered about {:.0} PUBLISH/s and sends about {:.0} copies/s (flows {}): {what} would be busy {:.0} % of the time. Past saturation its queue grows through the run, and latency with it, until full; then it drops packets, which TCP retransmits, adding load: expect at most about {:.0} % delivered. Add brokers, lower the load, or shorten the processing times",
                l.publishes,
                l.copies,
                l.flows.join(", "),
                100.0 * rho,
                100.0 / rho,
            ),
        ));
    }
    out
}

/// Breadth-first over point-to-point links from `root`: the link by which
/// each node was first reached (fewest hops; ties by link order).
fn link_tree(sc: &Scenario, root: usize) -> Vec<Option<usize>> {
    let n = sc.nodes.len();
    let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (i, l) in sc.links.iter().enumerate() {
        adj[l.a].push((l.b, i));
        adj[l.b].push((l.a, i));
    }
    let mut via = vec![None; n];
    let mut seen = vec![false; n];
    seen[root] = true;
    let mut queue = VecDeque::from([root]);
    while let Some(x) = queue.pop_front() {
        for &(y, l) in &adj[x] {
            if !seen[y] {
                seen[y] = true;
                via[y] = Some(l);
                queue.push_back(y);
            }
        }
    }
    via
}

/// The links from `root` to `to` in `via` (from [`link_tree`]), or None
/// when `to` is not reached by links alone.
fn path_to(sc: &Scenario, via: &[Option<usize>], root: usize, to: usize) -> Option<Vec<usize>> {
    let mut path = Vec::new();
    let mut x = to;
    while x != root {
        let l = via[x]?;
        path.push(l);
        let link = &sc.links[l];
        x = if link.a == x { link.b } else { link.a };
    }
    Some(path)
}
