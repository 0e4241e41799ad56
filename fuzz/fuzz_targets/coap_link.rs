//! cargo-fuzz target `coap_link`: see `qossim::fuzz::coap_link` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::coap_link(data);
});
