//! qossim: a deterministic discrete-event simulator comparing IoT messaging
//! protocols (a UDP baseline, CoAP, MQTT 3.1.1 over a TCP model, and the
//! protocols that plug in) over lossy links, with real, byte-accurate
//! protocol state machines.
//!
//! Layers, lowest first (docs/architecture.md): [`sim`] (time, event queue,
//! random streams), [`net`] (addresses, IPv4/UDP wire formats,
//! fragmentation), [`link`] (links, loss models, the radio medium),
//! [`sansio`] (the one driver shape), [`transport`] (the TCP model),
//! [`proto`] (protocol cores and the real-socket driver), [`app`] (the
//! workload), [`scenario`] (TOML → validated model), [`metrics`], [`world`]
//! (the simulator: the host stack and protocol plug-ins), [`report`]
//! (files), [`run`], [`sweep`], [`cli`]; [`browser`] is the entry point
//! of the WebAssembly build, which leaves out everything behind the
//! `native` feature (the CLI, sweeps, charts, real sockets).
//!
//! The entry points most callers need are re-exported here: load a
//! scenario, run it (or build a [`World`] and run it in memory), extend the
//! simulator with a protocol plug-in.

#![warn(unreachable_pub)]

pub mod app;
#[cfg(feature = "native")]
pub mod bench;
pub mod browser;
pub mod check;
#[cfg(feature = "native")]
pub mod cli;
pub mod fuzz;
pub mod link;
pub mod metrics;
pub mod net;
pub mod proto;
pub mod report;
pub mod run;
pub mod sansio;
pub mod scenario;
pub mod sim;
#[cfg(feature = "native")]
pub mod sweep;
pub mod transport;
pub mod world;

pub use run::{run_in_memory, MemoryRun, RunError, RunOptions};
#[cfg(feature = "native")]
pub use run::{run_scenario, RunReport};
pub use sansio::SansIo;
pub use scenario::model::{Protocol, Reliability, Scenario};
pub use scenario::{load_file, load_file_with, load_str, load_str_with, ScenarioError};
pub use sim::{SimDuration, SimTime};
pub use world::apps::{
    ClientAction, Ctx, Message, Plugin, PluginEntry, PluginOutput, Registry, RunEnd,
};
pub use world::host::{DatagramApp, Received, SockId, SockOpts, StreamApp, StreamEvent};
pub use world::{Outputs, RunOutcome, World};
