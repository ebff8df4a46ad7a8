//! The Salesforce connector against testkit's stateful mock Salesforce, run through the
//! core's job runner (the worker's code path), with an in-memory record map.

mod auth;
mod errors;
mod harness;
mod lifecycle;
mod on_many;
mod soql;
mod write_modes;
