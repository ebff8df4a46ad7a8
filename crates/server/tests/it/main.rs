//! In-process tests of the server crate: the ingress and admin routers driven with
//! `tower::ServiceExt::oneshot`, on a real SQLite store; the worker runtime with a
//! scripted connector; readiness; and the hostile-CRM corpus (real connectors against
//! misbehaving mocks).

mod admin;
mod corpus;
mod ingress;
mod readiness;
mod support;
mod worker;
