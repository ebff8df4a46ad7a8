//! Test support shared by slatis-sync's tests and benchmarks: sample events and signature
//! vectors ([`fixtures`]), a signer ([`signer`]), stateful mock destinations ([`mock`]),
//! a harness that runs the real binary ([`process`]), raw HTTP/1 over TCP for
//! hostile clients ([`raw`]), a PostgreSQL schema per test ([`postgres`]) and a TCP
//! proxy that cuts connections on command ([`proxy`]).

pub mod fixtures;
pub mod mock;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod signer;
pub mod standin;
