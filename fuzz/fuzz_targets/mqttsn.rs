//! cargo-fuzz target `mqttsn`: see `qossim::fuzz::mqttsn_message` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::mqttsn_message(data);
});
