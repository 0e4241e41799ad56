//! cargo-fuzz target `tcp_segment`: see `qossim::fuzz::tcp_segment` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::tcp_segment(data);
});
