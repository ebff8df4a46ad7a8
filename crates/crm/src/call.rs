//! An authenticated call: sent with the current credentials, and once more with fresh
//! ones after the CRM answers that they were refused (401, or the CRM's own word for it).
//!
//! Invariants: a call is re-sent at most once; the second attempt names the refused
//! secret as `stale`, so the token cache mints a new one unless another caller already
//! did; credentials that cannot be refreshed (a static API token) are never re-sent.

use std::future::Future;

/// How one attempt of a call ended, when it got an answer to judge.
pub enum Attempt<T, E> {
    /// Done.
    Done(T),
    /// The CRM refused `secret`; `error` is the failure if it cannot be refreshed.
    Refused {
        /// The secret that was refused (e.g. the bearer token).
        secret: String,
        /// The failure to report when no second attempt is made.
        error: E,
    },
}

/// Runs `attempt(None)`, and when it is refused and `refreshable`, `attempt(Some(secret))`
/// once more.
///
/// # Errors
/// The last attempt's failure.
pub async fn with_reauth<T, E, F, Fut>(refreshable: bool, mut attempt: F) -> Result<T, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Attempt<T, E>, E>>,
{
    match attempt(None).await? {
        Attempt::Done(v) => Ok(v),
        Attempt::Refused { error, .. } if !refreshable => Err(error),
        Attempt::Refused { secret, .. } => match attempt(Some(secret)).await? {
            Attempt::Done(v) => Ok(v),
            Attempt::Refused { error, .. } => Err(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    async fn run(refreshable: bool, answers: &[bool]) -> (Result<u8, String>, Vec<Option<String>>) {
        let seen = Mutex::new(Vec::new());
        let answers = Mutex::new(answers.to_vec());
        let result = with_reauth(refreshable, |stale| {
            seen.lock().expect("seen").push(stale);
            let ok = answers.lock().expect("answers").remove(0);
            async move {
                Ok(if ok {
                    Attempt::Done(7)
                } else {
                    Attempt::Refused {
                        secret: "tok".into(),
                        error: "401".to_owned(),
                    }
                })
            }
        })
        .await;
        (result, seen.into_inner().expect("seen"))
    }

    #[tokio::test]
    async fn a_refused_call_is_sent_once_more_with_the_stale_secret_named() {
        assert_eq!(run(true, &[true]).await, (Ok(7), vec![None]));
        assert_eq!(
            run(true, &[false, true]).await,
            (Ok(7), vec![None, Some("tok".into())])
        );
        assert_eq!(
            run(true, &[false, false]).await,
            (Err("401".into()), vec![None, Some("tok".into())])
        );
        assert_eq!(run(false, &[false]).await, (Err("401".into()), vec![None]));
    }
}
