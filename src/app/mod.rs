//! Applications: the protocol-neutral workload of `[[flows]]`.
pub mod workload;
