//! Test support shared by slatis-sync's tests and benchmarks: sample events and signature
//! vectors ([`fixtures`]), a signer ([`signer`]), stateful mock destinations ([`mock`]),
//! and a harness that runs the real binary ([`process`]).

pub mod fixtures;
pub mod mock;
pub mod process;
pub mod signer;
