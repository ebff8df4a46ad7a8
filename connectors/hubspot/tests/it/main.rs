//! The HubSpot connector against testkit's stateful mock HubSpot, run through the core's
//! job runner (the same code path as the worker), with an in-memory record map.

mod harness;
mod lifecycle;
mod limits;
mod matching;
mod modes;
mod races;
