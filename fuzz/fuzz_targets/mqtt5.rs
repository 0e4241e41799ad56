//! cargo-fuzz target `mqtt5`: see `qossim::fuzz::mqtt5_packet` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::mqtt5_packet(data);
});
