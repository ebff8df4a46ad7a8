//! Mock destinations that keep state and answer like the real thing.

mod http;

pub use http::{Fault, MockHttp, Received};
