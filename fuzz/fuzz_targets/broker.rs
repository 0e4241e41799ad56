//! cargo-fuzz target `broker`: see `qossim::fuzz::broker` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::broker(data);
});
