//! In-process tests of the server crate: the ingress and admin routers driven with
//! `tower::ServiceExt::oneshot`, on a real SQLite store; the worker runtime with a
//! scripted connector; readiness; the hostile-CRM corpus (real connectors against
//! misbehaving mocks); and the serving layer over raw TCP.

mod admin;
mod admin_api;
mod corpus;
mod ingress;
mod readiness;
mod serve;
mod support;
mod worker;
