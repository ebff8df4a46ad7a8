//! The store's integration tests: one conformance suite that every backend must pass,
//! SQLite-specific checks (file ownership, durability across reopen) and PostgreSQL-specific
//! ones (several replicas on one schema).

mod conformance;
mod postgres;
mod search;
mod sqlite;
