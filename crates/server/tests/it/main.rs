//! In-process tests of the server crate: the ingress and admin routers driven with
//! `tower::ServiceExt::oneshot`, on a real SQLite store, the worker runtime with a
//! scripted connector, and the serving layer over raw TCP.

mod admin;
mod ingress;
mod serve;
mod support;
mod worker;
