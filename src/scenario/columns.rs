//! The names of `runs.csv`'s columns, in order: the writers
//! (`metrics::summary`, which re-exports them) and the expectations of
//! scenario files (`scenario::expect`) share this one list.

/// Identifying columns of `runs.csv`, before the swept parameters.
pub const RUN_KEY_COLUMNS: [&str; 8] = [
    "run_id",
    "scenario",
    "seed",
    "replication",
    "protocol",
    "reliability",
    "flow",
    "pattern",
];

/// The core metric columns every run has, in order (DESIGN.md's list and
/// what the simulation core added beyond it); extension columns follow
/// (`world::apps::Registry::metric_columns`).
pub const CORE_COLUMNS: [&str; 34] = [
    "sent",
    "intended",
    "delivered",
    "duplicates",
    "delivery_ratio",
    "latency_ms_mean",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_p99",
    "latency_ms_max",
    "bytes_on_wire",
    "bytes_on_wire_per_delivered",
    "retransmissions",
    "drops_channel",
    "drops_queue",
    "drops_mtu",
    "collisions",
    "energy_mj",
    "drops_no_route",
    "drops_link_down",
    "drops_node_down",
    "drops_reassembly",
    "late_deliveries",
    "give_ups",
    "resets",
    "duplicates_suppressed",
    "bytes_payload",
    "bytes_protocol",
    "bytes_transport_ip",
    "bytes_retransmissions",
    "drops_fault",
    // the radio hop's layers taken out of bytes_transport_ip (issue 20)
    "bytes_link",
    "bytes_adaptation",
    // the security overlays taken out of bytes_protocol (issue 21)
    "bytes_security",
];

/// The host TCP's extension columns (`tcp_*`), in order.
pub const TCP_COLUMNS: [&str; 7] = [
    "tcp_retransmissions",
    "tcp_rto_expiries",
    "tcp_connection_failures",
    "tcp_malformed",
    // connections or DTLS associations a security overlay gave up, secure
    // handshakes completed, time to the first application byte (issue 21)
    "security_failures",
    "secure_handshakes",
    "connect_ms_mean",
];

/// MQTT's extension columns, in order.
pub const MQTT_COLUMNS: [&str; 6] = [
    "mqtt_connection_losses",
    "mqtt_reconnects",
    "mqtt_wills",
    "mqtt_will_delay_ms_mean",
    "mqtt_dropped",
    "mqtt_denied",
];

/// The radio energy columns by state (issue #4), after the MQTT ones.
pub const ENERGY_COLUMNS: [&str; 9] = [
    "energy_mj_tx",
    "energy_mj_rx",
    "energy_mj_listen",
    "energy_mj_sleep",
    "energy_mj_per_delivered",
    // the flow's own frames on the air (issue 20)
    "frames_air",
    "bytes_air",
    "airtime_ms_air",
    "energy_mj_air",
];

/// MQTT-SN's extension columns (issue #13), in order.
pub const MQTTSN_COLUMNS: [&str; 8] = [
    "mqttsn_registration_bytes",
    "mqttsn_discovery_ms_mean",
    "mqttsn_buffered_asleep",
    "mqttsn_gateway_drops",
    "mqttsn_client_drops",
    "mqttsn_bytes_constrained",
    "mqttsn_bytes_backhaul",
    "mqttsn_gateway_connections",
];

/// CoAP request/response's extension columns (issue #14), in order.
pub const COAP_COLUMNS: [&str; 8] = [
    "rtt_ms_p50",
    "rtt_ms_p99",
    "round_trip_success",
    "bytes_per_exchange",
    "coap_notifications_sent",
    "coap_notifications_accepted",
    "coap_notifications_stale",
    "coap_reregistrations",
];

/// The spec-oracle monitors' count (issue 15), always the last column;
/// empty when the monitors were off.
pub const VIOLATIONS: &str = "violations";

/// Every metric column with the built-in protocols, in order: the core
/// columns, then the host TCP's, MQTT's, the radio energy columns,
/// MQTT-SN's and CoAP's, then the monitors' `violations`. Built from the
/// groups above, which the writers use too, so the list cannot drift from
/// what they write.
pub const METRIC_COLUMNS: [&str; 73] = join(&[
    &CORE_COLUMNS,
    &TCP_COLUMNS,
    &MQTT_COLUMNS,
    &ENERGY_COLUMNS,
    &MQTTSN_COLUMNS,
    &COAP_COLUMNS,
    &[VIOLATIONS],
]);

/// The concatenation of `parts` (a compile-time error unless they hold
/// exactly `N` names).
const fn join<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            assert!(n < N, "more columns than the array holds");
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "fewer columns than the array holds");
    out
}
