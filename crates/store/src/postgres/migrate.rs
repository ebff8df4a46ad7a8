//! The PostgreSQL schema's versions, and applying them.
//!
//! Invariants:
//! - each script of [`MIGRATIONS`] runs once, in order, and `schema_migrations` lists the
//!   versions applied (with when);
//! - the check and every script run in one transaction that first takes
//!   `pg_advisory_xact_lock` on a key of the schema: replicas starting at once wait for
//!   each other, and the second finds nothing left to do; a failing script leaves nothing
//!   behind;
//! - a database with a version this build does not know is refused (a newer binary
//!   migrated it): running old code on a newer schema is not safe.

use crate::{Result, StoreError};
use deadpool_postgres::GenericClient;

/// The schema, one script per version (version = index + 1).
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_search",
        include_str!("../../migrations/postgres/0002_search.sql"),
    ),
];

/// Serializes migrations of one schema between processes (the key of the advisory lock).
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('slatis-sync migrations ' || current_schema(), 0))";

const TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

fn failed(what: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Migrate(format!("{what}: {}", super::describe(e)))
}

/// The versions applied so far (none when the table does not exist yet).
async fn applied(c: &impl GenericClient) -> Result<Vec<i32>> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(|e| failed("cannot read schema_migrations", &e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(|e| failed("cannot read schema_migrations", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The names of the scripts not applied yet, refusing a schema newer than this build.
fn pending(applied: &[i32]) -> Result<Vec<(i32, &'static str, &'static str)>> {
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        return Err(StoreError::Migrate(format!(
            "the database has schema version {newer}, newer than this build knows ({known}): upgrade slatis-sync"
        )));
    }
    Ok(MIGRATIONS
        .iter()
        .enumerate()
        .filter_map(|(i, (name, sql))| {
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            (!applied.contains(&version)).then_some((version, *name, *sql))
        })
        .collect())
}

/// The migrations `slatis-sync migrate` would apply (none: up to date).
///
/// # Errors
/// When the database cannot be read, or has a newer schema than this build.
pub(super) async fn check(c: &impl GenericClient) -> Result<Vec<String>> {
    Ok(pending(&applied(c).await?)?
        .into_iter()
        .map(|(_, name, _)| name.to_owned())
        .collect())
}

/// Applies every pending migration under the advisory lock; returns their names.
///
/// # Errors
/// [`StoreError::Migrate`] when a script fails (nothing of the run is kept).
pub(super) async fn apply(client: &mut deadpool_postgres::Client) -> Result<Vec<String>> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| failed("cannot begin", &e))?;
    tx.execute(LOCK, &[])
        .await
        .map_err(|e| failed("cannot take the migration lock", &e))?;
    tx.batch_execute(TABLE)
        .await
        .map_err(|e| failed("cannot create schema_migrations", &e))?;
    let todo = pending(&applied(&tx).await?)?;
    let mut done = Vec::with_capacity(todo.len());
    for (version, name, sql) in todo {
        tx.batch_execute(sql)
            .await
            .map_err(|e| failed(&format!("schema version {version} ({name})"), &e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await
        .map_err(|e| failed("cannot record the version", &e))?;
        tracing::info!(version, name, "applied a schema migration");
        done.push(name.to_owned());
    }
    tx.commit()
        .await
        .map_err(|e| failed("cannot commit the migration", &e))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_lists_what_is_missing_and_refuses_a_newer_schema() {
        assert_eq!(pending(&[]).expect("fresh").len(), MIGRATIONS.len());
        let all: Vec<i32> = (1..=i32::try_from(MIGRATIONS.len()).expect("few")).collect();
        assert!(pending(&all).expect("current").is_empty());
        let newer = pending(&[1, 99]).expect_err("newer");
        assert!(newer.to_string().contains("upgrade slatis-sync"), "{newer}");
    }
}
