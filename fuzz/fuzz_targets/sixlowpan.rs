//! cargo-fuzz target `sixlowpan`: see `qossim::fuzz::sixlowpan` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::sixlowpan(data);
});
