//! The CRM connectors' toolkit: what HubSpot, Salesforce and Pipedrive (and any further
//! CRM) share, written and tested once.
//!
//! - [`token`]: an OAuth access token cache with single-flight refresh and refresh-token
//!   rotation;
//! - [`call`]: an authenticated call sent once more with a fresh token after a 401;
//! - [`RecordApi`] and [`execute`]: the action engine. A CRM implements the record calls
//!   (create, read, update, delete, search, …) and classes its errors; the engine locates
//!   the record a `match` names and applies `create` / `update` / `upsert` / `delete` /
//!   `find` with the write modes.
//!
//! Invariants (the engine's, for every CRM):
//! - an upsert never makes a second record for the same match in one instance: upserts of
//!   one match value (ignoring case) run one at a time under the instance's
//!   [`slatis_core::connector::KeyLocks`], and each remembers what it made in the record
//!   map before the next looks;
//! - a retried job (attempt 2+) finds what a lost create answer made among the records the
//!   CRM's primary store holds since the event arrived ([`RecordApi::recent`]);
//! - a record the record map names that the CRM no longer has (404) is forgotten and
//!   looked up again: an upsert creates it when nothing is found, an update is retried;
//! - errors reach the queue classed ([`RecordApi::class`]).

pub mod call;
mod engine;
mod record_api;
pub mod token;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod fake;

pub use engine::execute;
pub use record_api::{Created, Found, Lookup, RecordApi, field_ignoring_case};
