//! qossim: a deterministic discrete-event simulator comparing IoT messaging
//! protocols (UDP baseline, CoAP, and MQTT/MQTT-SN as they land) over lossy links.
//!
//! Layers, top to bottom (see DESIGN.md): `scenario` (TOML → validated model),
//! `world` (the simulator: nodes, links, routing, apps), `proto` (sans-IO
//! protocol state machines), `net` (IPv4/UDP wire formats, fragmentation,
//! routing), `link` (rate, delay, MTU, queue, loss models), `sim` (time, event
//! queue, random streams); `metrics` and `report` turn a run into files; `run`
//! and `cli` are what the binary calls.

#![warn(unreachable_pub)]

pub mod app;
pub mod cli;
pub mod link;
pub mod metrics;
pub mod net;
pub mod proto;
pub mod report;
pub mod run;
pub mod sansio;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod transport;
pub mod world;
