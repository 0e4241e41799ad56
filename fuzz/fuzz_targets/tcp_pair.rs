//! cargo-fuzz target `tcp_pair`: see `qossim::fuzz::tcp_pair` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::tcp_pair(data);
});
