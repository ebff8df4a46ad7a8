//! The Pipedrive connector against testkit's stateful mock Pipedrive, run through the
//! core's job runner (the worker's code path), with an in-memory record map.

mod errors;
mod harness;
mod lifecycle;
mod retries;
mod writes;
