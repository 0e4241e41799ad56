//! QoS 1 over a lossy link against its closed form (DESIGN.md "Tests":
//! statistical tests compare with closed forms using a stated tolerance
//! and fixed seeds).
//!
//! Each datagram between the client and the gateway is lost with
//! probability p, independently, each way. A QoS 1 PUBLISH is sent and
//! retransmitted every T_RETRY until its PUBACK arrives, at most N times
//! (N = N_RETRY); then it is given up and dropped (MQTT-SN 1.2 §6.13). With
//! q = 1 − (1 − p)² (one attempt fails: PUBLISH or PUBACK lost):
//! * the gateway receives the message with probability 1 − p^(N+1),
//! * the publisher gets its PUBACK with probability 1 − q^(N+1),
//! * the PUBLISH is transmitted Σ_{k=0..N} q^k times on average
//!   (E[T²] = Σ (2k+1) q^k gives the variance).
//!
//! 20 000 messages per case, published on a predefined topic (no REGISTER),
//! keep alive off; after a give-up the client forgets the gateway, finds it
//! again (SEARCHGW/GWINFO over the same lossy link) and reconnects, and the
//! next message starts afresh. Every estimate must lie within 3 standard
//! errors of the closed form.

mod mqttsn_common;

use mqttsn_common::*;
use qossim::proto::mqtt::QoS;
use qossim::proto::mqttsn::client::PublishTopicType;
use qossim::proto::mqttsn::{ClientConfig, ClientEvent, GatewayConfig, GatewayMode, MsgType, Qos};
use qossim::sim::SimRng;

const MESSAGES: u32 = 20_000;

struct Outcome {
    received: f64,
    acked: f64,
    mean_tx: f64,
}

fn simulate(p: f64, n_retry: u32, seed: u64) -> Outcome {
    let mut net = Net::new(ms(10)).with_seed(seed);
    net.logging = false;
    net.add_gateway(GatewayConfig {
        mode: GatewayMode::Aggregating,
        t_adv: None,
        predefined: vec![(1, "cf/topic".into())],
        ..GatewayConfig::default()
    });
    let c = net.add_client(ClientConfig {
        keep_alive: 0,
        n_retry,
        predefined: vec![(1, "cf/topic".into())],
        publish_topic_type: PublishTopicType::Predefined,
        max_queued: MESSAGES as usize + 1,
        ..ClientConfig::new("cf")
    });
    net.clients[c].add_gateway(1, gw_addr(0));
    net.add_subscriber("cf/#", QoS::AtLeastOnce);
    net.run_for(secs(1));
    let now = net.now;
    net.clients[c].connect(now);
    assert!(net.run_until_pred(secs(30), |n| n.clients[c].is_connected()));
    // Loss starts with the first PUBLISH: every datagram between the client
    // and the gateway, both ways.
    let mut rng = SimRng::stream(seed, "closed-form/loss");
    net.set_loss(move |w| {
        let between = (w.from == client_addr(0) && w.to == gw_addr(0))
            || (w.from == gw_addr(0) && w.to == client_addr(0));
        between && rng.bernoulli(p)
    });
    let tx_before = net.clients[c].stats().sent_of(MsgType::Publish);
    let now = net.now;
    for k in 0..MESSAGES {
        net.clients[c]
            .publish(now, "cf/topic", k.to_be_bytes().to_vec(), Qos::One, false)
            .expect("queue");
    }
    // Run until every message is acknowledged or given up.
    let done = |n: &Net| {
        n.client_events[0]
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    ClientEvent::PublishAcked { .. }
                        | ClientEvent::GaveUp {
                            message: Some(_),
                            ..
                        }
                )
            })
            .count()
    };
    let mut settled = 0;
    while settled < MESSAGES as usize {
        net.run_for(secs(100_000));
        let d = done(&net);
        assert!(d > settled, "no progress ({d} of {MESSAGES} settled)");
        settled = d;
    }
    let acked = net.client_events[c]
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::PublishAcked { .. }))
        .count();
    let mut got: Vec<u32> = net.subs[0]
        .received
        .iter()
        .map(|(_, _, p, _)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        .collect();
    got.sort_unstable();
    got.dedup();
    let tx = net.clients[c].stats().sent_of(MsgType::Publish) - tx_before;
    let n = f64::from(MESSAGES);
    Outcome {
        received: got.len() as f64 / n,
        acked: acked as f64 / n,
        mean_tx: tx as f64 / n,
    }
}

#[test]
fn qos1_delivery_ack_and_transmissions_match_closed_form() {
    let n = f64::from(MESSAGES);
    let mut failures = Vec::new();
    eprintln!("p    N  quantity     simulated  expected   s.e.      z");
    for (case, (p, n_retry)) in [(0.2, 3u32), (0.2, 1), (0.4, 3), (0.4, 1)]
        .into_iter()
        .enumerate()
    {
        let o = simulate(p, n_retry, 1000 + case as u64);
        let q = 1.0 - (1.0 - p) * (1.0 - p);
        let nn = n_retry as i32;
        let recv = 1.0 - p.powi(nn + 1);
        let ack = 1.0 - q.powi(nn + 1);
        let mean: f64 = (0..=nn).map(|k| q.powi(k)).sum();
        let m2: f64 = (0..=nn).map(|k| f64::from(2 * k + 1) * q.powi(k)).sum();
        let rows = [
            (
                "received",
                o.received,
                recv,
                (recv * (1.0 - recv) / n).sqrt(),
            ),
            ("acked", o.acked, ack, (ack * (1.0 - ack) / n).sqrt()),
            ("mean_tx", o.mean_tx, mean, ((m2 - mean * mean) / n).sqrt()),
        ];
        for (name, sim, exp, se) in rows {
            let z = (sim - exp) / se;
            eprintln!("{p:.1}  {n_retry}  {name:<11}  {sim:.5}    {exp:.5}    {se:.5}  {z:+.2}");
            if z.abs() > 3.0 {
                failures.push(format!(
                    "p={p} N={n_retry} {name}: {sim} vs {exp} (z={z:.2})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
