//! Issue 22 item 4: qossim's MQTT 3.1.1 and CoAP codecs against Rust peers,
//! per packet, encode + decode, in one run:
//!
//! * MQTT CONNECT, PUBLISH QoS 1 (32-byte payload) and PUBACK against the
//!   `mqttbytes` crate's `v4` module;
//! * a CoAP CON GET with a 2-byte token and five Uri-Path options against
//!   `coap-lite`.
//!
//! `cargo bench --bench codec_peers` (criterion; `-- --quick` for a short
//! run). Before timing, every case checks that both sides encode the same
//! bytes and decode each other's, and prints the allocations one decode
//! makes on each side. Each timed iteration encodes the packet into a
//! reused buffer (where the side has one) and decodes it again; `qossim`
//! decodes to the borrowed view, `qossim_owned` to the owned `Packet` /
//! `Message`. A decoded CoAP view is walked to the end of its options, so
//! the option headers are read as often as `coap-lite` reads them.
//!
//! The counting allocator adds one thread-local increment to every
//! allocation on both sides.

#[path = "../tests/support/codec_cases.rs"]
mod codec_cases;
#[path = "../tests/support/count_alloc.rs"]
mod count_alloc;

use std::hint::black_box;

use bytes::BytesMut;
use codec_cases::*;
use criterion::Criterion;
use mqttbytes::v4;
use qossim::proto::coap::{Message, MessageRef};
use qossim::proto::mqtt::codec::{decode, decode_view, MAX_PACKET_SIZE};
use qossim::proto::mqtt::Packet;

/// The same three MQTT packets as `mqttbytes` values.
fn peer_mqtt() -> [(&'static str, Packet, v4::Packet); 3] {
    let mut connect = v4::Connect::new(CLIENT_ID);
    connect.keep_alive = KEEP_ALIVE;
    connect.clean_session = true;
    let mut publish = v4::Publish::new(TOPIC, mqttbytes::QoS::AtLeastOnce, PAYLOAD.to_vec());
    publish.pkid = PID;
    [
        ("mqtt_connect", mqtt_connect(), v4::Packet::Connect(connect)),
        (
            "mqtt_publish_qos1",
            mqtt_publish(),
            v4::Packet::Publish(publish),
        ),
        (
            "mqtt_puback",
            mqtt_puback(),
            v4::Packet::PubAck(v4::PubAck::new(PID)),
        ),
    ]
}

fn peer_write(p: &v4::Packet, buf: &mut BytesMut) {
    let r = match p {
        v4::Packet::Connect(c) => c.write(buf),
        v4::Packet::Publish(p) => p.write(buf),
        v4::Packet::PubAck(a) => a.write(buf),
        other => panic!("not a benchmarked packet: {other:?}"),
    };
    r.expect("mqttbytes encodes");
}

/// The CON GET as a `coap-lite` packet.
fn peer_coap() -> coap_lite::Packet {
    let mut p = coap_lite::Packet::new();
    p.header.set_type(coap_lite::MessageType::Confirmable);
    p.header.code = coap_lite::MessageClass::Request(coap_lite::RequestType::Get);
    p.header.message_id = COAP_MID;
    p.set_token(COAP_TOKEN.to_vec());
    for seg in COAP_PATH {
        p.add_option(coap_lite::CoapOption::UriPath, seg.as_bytes().to_vec());
    }
    p
}

/// Walk a CoAP view to the end: what a receiver reads of it.
fn walk(m: &MessageRef<'_>) -> usize {
    m.options().map(|o| o.value.len()).sum::<usize>() + m.payload.len()
}

/// Same bytes on both sides, each side decodes the other's, and the
/// allocations per decode, printed for BENCHMARKS.md.
fn check_and_count() {
    println!("allocations per decode:");
    for (name, ours, theirs) in peer_mqtt() {
        let mut mine = Vec::new();
        ours.encode(&mut mine).expect("qossim encodes");
        let mut peer = BytesMut::new();
        peer_write(&theirs, &mut peer);
        assert_eq!(mine, &peer[..], "{name}: qossim and mqttbytes bytes differ");
        let back = v4::read(&mut BytesMut::from(&mine[..]), MAX_PACKET_SIZE);
        assert_eq!(
            back.as_ref().ok(),
            Some(&theirs),
            "{name}: mqttbytes reads ours"
        );
        let (view, _) = decode_view(&peer, MAX_PACKET_SIZE)
            .expect("valid")
            .expect("complete");
        assert_eq!(view.to_packet(), ours, "{name}: qossim reads mqttbytes'");

        let (_, view) = count_alloc::count(|| black_box(decode_view(&mine, MAX_PACKET_SIZE)));
        let (_, owned) = count_alloc::count(|| black_box(decode(&mine, MAX_PACKET_SIZE)));
        let mut input = BytesMut::from(&mine[..]);
        let (_, theirs) = count_alloc::count(|| black_box(v4::read(&mut input, MAX_PACKET_SIZE)));
        println!("  {name}: qossim {view}, qossim_owned {owned}, mqttbytes {theirs}");
    }

    let ours = coap_get();
    let theirs = peer_coap();
    let mine = ours.to_bytes().expect("qossim encodes");
    let peer = theirs.to_bytes().expect("coap-lite encodes");
    assert_eq!(
        mine, peer,
        "coap_con_get: qossim and coap-lite bytes differ"
    );
    let back = coap_lite::Packet::from_bytes(&mine).expect("coap-lite reads ours");
    assert_eq!(back, theirs, "coap_con_get: coap-lite reads ours");
    assert_eq!(
        Message::parse(&peer).as_ref(),
        Ok(&ours),
        "coap_con_get: qossim reads coap-lite's"
    );
    let (_, view) = count_alloc::count(|| black_box(MessageRef::parse(&mine).map(|m| walk(&m))));
    let (_, owned) = count_alloc::count(|| black_box(Message::parse(&mine)));
    let (_, theirs) = count_alloc::count(|| black_box(coap_lite::Packet::from_bytes(&mine)));
    println!("  coap_con_get: qossim {view}, qossim_owned {owned}, coap-lite {theirs}");
}

fn bench_mqtt(c: &mut Criterion) {
    for (name, ours, theirs) in peer_mqtt() {
        let mut g = c.benchmark_group(name);
        let mut buf = Vec::with_capacity(256);
        g.bench_function("qossim", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&ours).encode(&mut buf).expect("encode");
                black_box(decode_view(black_box(&buf), MAX_PACKET_SIZE).expect("valid"));
            })
        });
        g.bench_function("qossim_owned", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&ours).encode(&mut buf).expect("encode");
                black_box(decode(black_box(&buf), MAX_PACKET_SIZE).expect("valid"));
            })
        });
        let mut peer = BytesMut::with_capacity(256);
        g.bench_function("mqttbytes", |b| {
            b.iter(|| {
                // `read` splits the packet off `peer`, leaving it empty; the
                // next write reclaims the storage once the packet is dropped.
                peer_write(black_box(&theirs), &mut peer);
                black_box(v4::read(black_box(&mut peer), MAX_PACKET_SIZE).expect("valid"));
            })
        });
        g.finish();
    }
}

fn bench_coap(c: &mut Criterion) {
    let ours = coap_get();
    let theirs = peer_coap();
    let mut g = c.benchmark_group("coap_con_get");
    let mut buf = Vec::with_capacity(128);
    g.bench_function("qossim", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&ours).emit(&mut buf).expect("emit");
            let m = MessageRef::parse(black_box(&buf)).expect("valid");
            black_box(walk(&m));
        })
    });
    g.bench_function("qossim_owned", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&ours).emit(&mut buf).expect("emit");
            black_box(Message::parse(black_box(&buf)).expect("valid"));
        })
    });
    // coap-lite encodes only into a vector of its own.
    g.bench_function("coap-lite", |b| {
        b.iter(|| {
            let bytes = black_box(&theirs).to_bytes().expect("encode");
            black_box(coap_lite::Packet::from_bytes(black_box(&bytes)).expect("valid"));
        })
    });
    g.finish();
}

fn main() {
    check_and_count();
    let mut c = Criterion::default().configure_from_args();
    bench_mqtt(&mut c);
    bench_coap(&mut c);
    c.final_summary();
}
