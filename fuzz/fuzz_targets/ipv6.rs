//! cargo-fuzz target `ipv6`: see `qossim::fuzz::ipv6` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::ipv6(data);
});
