//! The store's integration tests: one conformance suite that every backend must pass,
//! and SQLite-specific checks (file ownership, durability across reopen).

mod conformance;
mod sqlite;
