//! In-process tests of the server crate: the ingress and admin routers driven with
//! `tower::ServiceExt::oneshot`, on a real SQLite store, and the worker runtime with a
//! scripted connector.

mod admin;
mod ingress;
mod support;
mod worker;
