//! End-to-end tests: the real `slatis-sync` binary on port 0, driven with signed
//! webhooks, delivering into testkit's stateful mock destinations.

mod backfill;
mod cli;
mod dashboard;
mod delivery;
mod durability;
mod fairness;
mod hostile;
mod hubspot;
mod ingress;
mod pipedrive;
mod postgres;
mod reload;
mod replicas;
mod salesforce;
mod secrets;
mod support;
mod tls;
mod webhooks;
