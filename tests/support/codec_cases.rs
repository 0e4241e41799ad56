//! The packets of issue 22's codec comparison, built with qossim's own
//! types: shared by the allocation test (`tests/codec_alloc.rs`) and the
//! benchmark against Rust peers (`benches/codec_peers.rs`), which include
//! this file with `#[path]`, so both measure the same bytes.

use qossim::proto::coap::{CoapOption, Code, Message, MessageType, Token};
use qossim::proto::mqtt::{
    Ack, Connect, Packet, PacketId, ProtocolLevel, Publish, QosPid, TopicName,
};

/// A 20-byte client identifier.
pub const CLIENT_ID: &str = "sensor-0042-factory7";
pub const KEEP_ALIVE: u16 = 60;
pub const TOPIC: &str = "fleet/dev-1234/telemetry";
/// A 32-byte reading.
pub const PAYLOAD: &[u8; 32] = br#"{"t":21.5,"h":40.2,"seq":123456}"#;
pub const PID: u16 = 4242;
/// Five Uri-Path segments of a CoAP CON GET.
pub const COAP_PATH: [&str; 5] = ["fleet", "dev-1234", "sensors", "temperature", "now"];
pub const COAP_TOKEN: [u8; 2] = [0xAB, 0xCD];
pub const COAP_MID: u16 = 0x1234;

fn pid() -> PacketId {
    PacketId::new(PID).expect("PID is not 0")
}

/// CONNECT, clean session, keep-alive 60 s, no will, no login.
pub fn mqtt_connect() -> Packet {
    Packet::Connect(Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: KEEP_ALIVE,
        client_id: CLIENT_ID.to_string(),
        will: None,
        username: None,
        password: None,
    })
}

/// PUBLISH QoS 1 of the 32-byte reading.
pub fn mqtt_publish() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(pid()),
        retain: false,
        topic: TopicName::new(TOPIC).expect("valid topic"),
        payload: PAYLOAD[..].into(),
    })
}

/// PUBACK for that PUBLISH.
pub fn mqtt_puback() -> Packet {
    Packet::PubAck(Ack { pid: pid() })
}

/// CON GET with a 2-byte token and five Uri-Path options.
pub fn coap_get() -> Message {
    let token = Token::new(&COAP_TOKEN).expect("2 bytes");
    let mut m = Message::new(MessageType::Con, Code::GET, COAP_MID, token);
    for seg in COAP_PATH {
        m.add_option(CoapOption::UriPath(seg.to_string()));
    }
    m
}
