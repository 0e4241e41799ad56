//! Issue 22 item 4: decoding through the borrowed views allocates nothing,
//! and encoding into a reused buffer allocates only the first time. A
//! per-thread counting allocator (`tests/support/count_alloc.rs`) counts
//! every allocation the measured closure makes.

#[path = "support/codec_cases.rs"]
mod codec_cases;
#[path = "support/count_alloc.rs"]
mod count_alloc;

use codec_cases::*;
use count_alloc::count;
use qossim::proto::coap::MessageRef;
use qossim::proto::mqtt::codec::{decode, decode_view, PacketView, MAX_PACKET_SIZE};
use qossim::proto::mqtt::{Packet, QoS, QosPid};

fn encoded(p: &Packet) -> Vec<u8> {
    let mut v = Vec::new();
    p.encode(&mut v).expect("encode");
    v
}

/// The counter sees allocations: the owned decode of a PUBLISH makes at
/// least its topic and its payload. Without this the zero checks below
/// could pass with a counter that never counts.
#[test]
fn counter_counts_owned_decode() {
    let bytes = encoded(&mqtt_publish());
    let (p, n) = count(|| decode(&bytes, MAX_PACKET_SIZE));
    assert_eq!(p, Ok(Some((mqtt_publish(), bytes.len()))));
    assert!(n >= 2, "owned PUBLISH decode made {n} allocations");
}

#[test]
fn mqtt_connect_view_decodes_without_allocating() {
    let bytes = encoded(&mqtt_connect());
    let (fields, n) = count(|| match decode_view(&bytes, MAX_PACKET_SIZE) {
        Ok(Some((PacketView::Connect(c), used))) => Some((
            c.client_id(),
            c.keep_alive(),
            c.clean_session(),
            c.will().is_none() && c.username().is_none() && c.password().is_none(),
            used,
        )),
        _ => None,
    });
    assert_eq!(n, 0, "CONNECT view decode allocated {n} times");
    assert_eq!(
        fields,
        Some((CLIENT_ID, KEEP_ALIVE, true, true, bytes.len()))
    );
}

#[test]
fn mqtt_publish_view_decodes_without_allocating() {
    let bytes = encoded(&mqtt_publish());
    let (fields, n) = count(|| match decode_view(&bytes, MAX_PACKET_SIZE) {
        Ok(Some((PacketView::Publish(p), used))) => Some((
            p.topic(),
            p.payload(),
            p.qos_pid(),
            p.dup() || p.retain(),
            used,
        )),
        _ => None,
    });
    assert_eq!(n, 0, "PUBLISH view decode allocated {n} times");
    let (topic, payload, qos_pid, flags, used) = fields.expect("a PUBLISH");
    assert_eq!(
        (topic, payload, flags, used),
        (TOPIC, &PAYLOAD[..], false, bytes.len())
    );
    assert_eq!(qos_pid.qos(), QoS::AtLeastOnce);
    assert_eq!(qos_pid.pid().map(|p| p.get()), Some(PID));
    assert!(matches!(qos_pid, QosPid::AtLeastOnce(_)));
}

#[test]
fn mqtt_puback_view_decodes_without_allocating() {
    let bytes = encoded(&mqtt_puback());
    let (v, n) = count(|| decode_view(&bytes, MAX_PACKET_SIZE));
    assert_eq!(n, 0, "PUBACK view decode allocated {n} times");
    let Ok(Some((PacketView::PubAck(a), 4))) = v else {
        panic!("not a 4-byte PUBACK: {v:?}");
    };
    assert_eq!(a.pid.get(), PID);
}

#[test]
fn coap_view_decodes_without_allocating() {
    let bytes = coap_get().to_bytes().expect("emit");
    let (fields, n) = count(|| {
        let m = MessageRef::parse(&bytes).ok()?;
        let mut path = [&b""[..]; 5];
        let mut segments = 0;
        for o in m.options() {
            if o.number != 11 {
                return None;
            }
            *path.get_mut(segments)? = o.value;
            segments += 1;
        }
        Some((
            m.ty,
            m.code,
            m.message_id,
            m.token,
            path,
            segments,
            m.payload,
        ))
    });
    assert_eq!(n, 0, "CoAP view decode allocated {n} times");
    let want = coap_get();
    let (ty, code, mid, token, path, segments, payload) = fields.expect("a CoAP message");
    assert_eq!(
        (ty, code, mid, token),
        (want.ty, want.code, COAP_MID, want.token)
    );
    assert_eq!(token.as_slice(), COAP_TOKEN);
    assert_eq!(segments, 5);
    assert_eq!(path, COAP_PATH.map(str::as_bytes));
    assert!(payload.is_empty());
}

/// Encoding into a buffer that is cleared and reused allocates on the
/// first packet (the buffer grows) and never again.
#[test]
fn encoding_into_a_reused_buffer_allocates_once() {
    let packets = [mqtt_connect(), mqtt_publish(), mqtt_puback()];
    let mut buf = Vec::new();
    let (_, first) = count(|| {
        for p in &packets {
            buf.clear();
            p.encode(&mut buf).expect("encode");
        }
    });
    assert!(first >= 1, "the empty buffer must have grown");
    let (_, again) = count(|| {
        for _ in 0..100 {
            for p in &packets {
                buf.clear();
                p.encode(&mut buf).expect("encode");
            }
        }
    });
    assert_eq!(again, 0, "MQTT encode into a reused buffer allocated");
    assert_eq!(buf, encoded(&mqtt_puback()));

    let m = coap_get();
    let mut buf = Vec::new();
    let (_, first) = count(|| m.emit(&mut buf).expect("emit"));
    assert!(first >= 1, "the empty buffer must have grown");
    let (_, again) = count(|| {
        for _ in 0..100 {
            buf.clear();
            m.emit(&mut buf).expect("emit");
        }
    });
    assert_eq!(again, 0, "CoAP emit into a reused buffer allocated");
    assert_eq!(buf, m.to_bytes().expect("emit"));
}
