//! The counting allocator (`qossim::sim::alloc`) installed for the codec
//! allocation test (`tests/codec_alloc.rs`) and the codec benchmark
//! (`benches/codec_peers.rs`), which include this file with `#[path]`. It
//! is not part of `tests/common` because declaring it installs the
//! allocator in the whole test binary. Counts are per thread.

pub use qossim::sim::alloc::count;
use qossim::sim::alloc::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;
