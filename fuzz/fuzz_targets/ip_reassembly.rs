//! cargo-fuzz target `ip_reassembly`: see `qossim::fuzz::ip_reassembly` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::ip_reassembly(data);
});
