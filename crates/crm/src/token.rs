//! An OAuth access token cache: the token in use, minted again when it lapses or a 401
//! rejected it, and the refresh token the CRM may rotate with each grant.
//!
//! Invariants:
//! - refreshes are single-flight: concurrent callers wait for one mint and share its
//!   token; a token a 401 rejected (`stale`) is minted again only if no one did already;
//! - how long a token is used comes from [`slatis_core::connector::token`] (bounded,
//!   refreshed early), or, for a token without a lifetime, until a 401 rejects it;
//! - a new refresh token in a grant's answer replaces the old one before the next grant;
//! - no token is ever put in an error or a `Debug` output (neither type has `Debug`).

use serde_json::Value;
use slatis_core::DeliveryError;
use slatis_core::connector::token::{lifetime, use_until};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A minted token and how long it may be used (`None`: until a 401 rejects it).
pub struct Minted<T> {
    /// The token (or the credentials carrying it).
    pub token: T,
    /// Its lifetime, e.g. from [`Minted::from_answer`].
    pub lifetime: Option<Duration>,
}

impl<T> Minted<T> {
    /// `token`, living as long as the token `answer`'s `expires_in` says (`default` when
    /// it says nothing readable).
    pub fn from_answer(token: T, answer: &Value, default: Duration) -> Self {
        Self {
            token,
            lifetime: Some(lifetime(answer, default)),
        }
    }
}

/// The access token in use.
pub struct TokenCache<T> {
    current: Mutex<Option<(T, Option<Instant>)>>,
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }
}

impl<T: Clone + Send> TokenCache<T> {
    /// The token to use now: the cached one while it is fresh and is not `stale` (the
    /// secret a 401 just rejected, as `secret` reads it from a token), else what `mint`
    /// makes (run by one caller at a time).
    ///
    /// # Errors
    /// What `mint` fails with.
    pub async fn get<F, Fut>(
        &self,
        stale: Option<&str>,
        secret: fn(&T) -> &str,
        mint: F,
    ) -> Result<T, DeliveryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Minted<T>, DeliveryError>>,
    {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = current.as_ref()
            && until.is_none_or(|u| Instant::now() < u)
            && Some(secret(token)) != stale
        {
            return Ok(token.clone());
        }
        let minted = mint().await?;
        *current = Some((minted.token.clone(), minted.lifetime.map(use_until)));
        Ok(minted.token)
    }
}

/// A refresh token the CRM may replace with each grant.
pub struct RefreshToken(Mutex<String>);

impl RefreshToken {
    /// The refresh token from the app's install.
    pub fn new(token: String) -> Self {
        Self(Mutex::new(token))
    }

    /// The refresh token to send now.
    pub async fn current(&self) -> String {
        self.0.lock().await.clone()
    }

    /// Keeps the grant answer's new `refresh_token`, if it has one.
    pub async fn rotate(&self, answer: &Value) {
        if let Some(new) = answer.get("refresh_token").and_then(Value::as_str) {
            *self.0.lock().await = new.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn id(t: &String) -> &str {
        t
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_mint_and_a_stale_token_is_minted_once() {
        let cache = Arc::new(TokenCache::<String>::default());
        let mints = Arc::new(AtomicU32::new(0));
        let mint = |mints: Arc<AtomicU32>| async move {
            let n = mints.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Minted::from_answer(
                format!("t{n}"),
                &json!({"expires_in": 3600}),
                Duration::from_secs(60),
            ))
        };
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (cache, mints) = (Arc::clone(&cache), Arc::clone(&mints));
                tokio::spawn(async move { cache.get(None, id, || mint(mints)).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("task").expect("token"), "t1");
        }
        assert_eq!(mints.load(Ordering::SeqCst), 1);
        // two callers saw t1 rejected: one mints t2, the other takes it
        let a = cache.get(Some("t1"), id, || mint(Arc::clone(&mints))).await;
        let b = cache.get(Some("t1"), id, || mint(Arc::clone(&mints))).await;
        assert_eq!((a.ok(), b.ok()), (Some("t2".into()), Some("t2".into())));
        assert_eq!(mints.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lapsed_token_is_minted_again_and_a_failed_mint_keeps_nothing() {
        let cache = TokenCache::<String>::default();
        let lapsed = || async {
            Ok(Minted::from_answer(
                "old".to_owned(),
                &json!({"expires_in": 0}),
                Duration::ZERO,
            ))
        };
        assert_eq!(
            cache.get(None, id, lapsed).await.ok().as_deref(),
            Some("old")
        );
        let failed = || async { Err(DeliveryError::retryable("token endpoint down")) };
        assert!(cache.get(None, id, failed).await.is_err());
        let forever = || async {
            Ok(Minted {
                token: "new".to_owned(),
                lifetime: None,
            })
        };
        assert_eq!(
            cache.get(None, id, forever).await.ok().as_deref(),
            Some("new")
        );
        let unused = || async { Err(DeliveryError::permanent("not called")) };
        assert_eq!(
            cache.get(None, id, unused).await.ok().as_deref(),
            Some("new")
        );
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_only_when_the_answer_names_one() {
        let r = RefreshToken::new("r1".into());
        r.rotate(&json!({"access_token": "a"})).await;
        assert_eq!(r.current().await, "r1");
        r.rotate(&json!({"refresh_token": "r2"})).await;
        assert_eq!(r.current().await, "r2");
    }
}
