//! cargo-fuzz target `ipv4`: see `qossim::fuzz::ipv4` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::ipv4(data);
});
