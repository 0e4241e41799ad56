//! cargo-fuzz target `coap_endpoint`: see `qossim::fuzz::coap_endpoint` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::coap_endpoint(data);
});
