//! Test support shared by slatis-sync's tests and benchmarks: sample events and signature
//! vectors ([`fixtures`]), a signer ([`signer`]), stateful mock destinations ([`mock`]),
//! a harness that runs the real binary ([`process`]), and raw HTTP/1 over TCP for
//! hostile clients ([`raw`]), and a PostgreSQL schema per test ([`postgres`]).

pub mod fixtures;
pub mod mock;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod signer;
