//! cargo-fuzz target `mac154`: see `qossim::fuzz::mac154` for the input layout
//! and the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    qossim::fuzz::mac154(data);
});
