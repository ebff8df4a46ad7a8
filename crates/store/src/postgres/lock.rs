//! [`crate::Store::lock`] on PostgreSQL: a session advisory lock, one pooled connection
//! per held name.
//!
//! Invariants:
//! - the name is hashed with the schema (`hashtextextended`), so deployments sharing a
//!   database do not lock each other out; a hash collision only serializes two names;
//! - the connection that took the lock is the one that releases it, and it goes back to
//!   the pool only after `pg_advisory_unlock` succeeded; otherwise it is closed, which
//!   releases the lock on the server: a name is never left held by an idle connection.

use crate::Result;
use slatis_core::connector::KeyGuard;

const LOCK: &str = "SELECT pg_advisory_lock(hashtextextended(current_schema() || ':' || $1, 0))";
const UNLOCK: &str =
    "SELECT pg_advisory_unlock(hashtextextended(current_schema() || ':' || $1, 0))";

/// The connection holding a name.
struct Held {
    client: Option<deadpool_postgres::Client>,
    key: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let unlocked = client
                        .query_one(UNLOCK, &[&key])
                        .await
                        .is_ok_and(|r| r.get::<_, bool>(0));
                    if !unlocked {
                        // close it: the server releases its locks with the session
                        drop(deadpool_postgres::Object::take(client));
                    }
                });
            }
            Err(_) => drop(deadpool_postgres::Object::take(client)),
        }
    }
}

/// Waits for `key` on `client`'s session, then holds it.
pub(super) async fn lock(client: deadpool_postgres::Client, key: &str) -> Result<KeyGuard> {
    // PostgreSQL text holds no NUL (connectors' keys join their parts with it): escaped,
    // one to one.
    let key = key.escape_default().to_string();
    client.execute(LOCK, &[&key]).await?;
    Ok(KeyGuard::new(Held {
        client: Some(client),
        key,
    }))
}
