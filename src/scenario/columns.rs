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
pub const CORE_COLUMNS: [&str; 31] = [
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
];

/// Every metric column with the built-in protocols, in order (the core
/// columns, then the host TCP's, MQTT's, the radio energy columns,
/// MQTT-SN's and CoAP's, then the monitors' `violations`).
pub const METRIC_COLUMNS: [&str; 58] = [
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
    // added by the simulation core beyond DESIGN.md's list
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
    // added by the TCP model
    "tcp_retransmissions",
    "tcp_rto_expiries",
    "tcp_connection_failures",
    "tcp_malformed",
    // added by MQTT
    "mqtt_connection_losses",
    "mqtt_reconnects",
    "mqtt_wills",
    "mqtt_will_delay_ms_mean",
    "mqtt_dropped",
    // radio energy by state (issue #4), after everything before
    "energy_mj_tx",
    "energy_mj_rx",
    "energy_mj_listen",
    "energy_mj_sleep",
    "energy_mj_per_delivered",
    // added by MQTT-SN (issue #13), after everything before
    "mqttsn_registration_bytes",
    "mqttsn_discovery_ms_mean",
    "mqttsn_buffered_asleep",
    "mqttsn_gateway_drops",
    "mqttsn_client_drops",
    "mqttsn_bytes_constrained",
    "mqttsn_bytes_backhaul",
    "mqttsn_gateway_connections",
    // added by CoAP request/response (issue #14), after everything before
    "rtt_ms_p50",
    "rtt_ms_p99",
    "round_trip_success",
    "bytes_per_exchange",
    // the spec-oracle monitors' count (issue 15), always last; empty when
    // the monitors were off
    "violations",
];
