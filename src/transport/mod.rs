//! Transport layer models. [`tcp`] is a sans-IO TCP (RFC 9293) with the
//! timers and congestion control of RFC 6298, RFC 5681 and RFC 6582; UDP's
//! wire format lives in `crate::net::udp`. [`layer`] is the interface of
//! the byte-stream layers that sit between TCP and an application (TLS,
//! WebSocket); [`tls`] is the TLS 1.2 / 1.3 layer.

pub mod dtls;
pub mod layer;
pub mod tcp;
pub mod tls;
pub mod websocket;
