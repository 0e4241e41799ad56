//! cargo-fuzz target `http_request`: see `qossim::fuzz::http_request` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::http_request(data);
});
