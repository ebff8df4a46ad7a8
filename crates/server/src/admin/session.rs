//! Dashboard sign-in sessions, kept in memory (they end at a restart).
//!
//! Invariants:
//! - the cookie holds a random session id (32 bytes from a CSPRNG), never the admin token;
//!   the server keeps only the id's SHA-256, the session's CSRF token and its expiry;
//! - a session lasts `admin.session_ttl` from sign-in (absolute: use does not extend it),
//!   and ends early at sign-out or when `admin.token` changes (a reload with a rotated
//!   token signs every browser out);
//! - at most [`MAX_SESSIONS`] are kept: expired ones go first, then the oldest.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The sign-in cookie's name.
pub const COOKIE: &str = "slatis_admin";

/// Sessions kept at most.
const MAX_SESSIONS: usize = 1024;

type Digest32 = [u8; 32];

fn sha256(text: &str) -> Digest32 {
    Sha256::digest(text.as_bytes()).into()
}

fn random_hex() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// One signed-in browser.
struct Session {
    /// Sent by the dashboard with every state-changing request (`X-CSRF-Token`).
    csrf: String,
    /// When it ends.
    expires: Instant,
    /// The SHA-256 of the admin token it was signed in with.
    token: Digest32,
}

/// A live session, as a request sees it.
#[derive(Clone)]
pub struct Live {
    /// Its CSRF token.
    pub csrf: String,
    /// The cookie's id's digest (to end it at sign-out).
    key: Digest32,
}

/// A new sign-in: what goes into the cookie.
pub struct SignedIn {
    /// The session id (the cookie's value).
    pub id: String,
}

/// The sessions of one admin listener.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<Digest32, Session>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for a browser that presented `token`, lasting `ttl`.
    pub fn start(&self, token: &str, ttl: Duration) -> SignedIn {
        let now = Instant::now();
        let id = random_hex();
        let session = Session {
            csrf: random_hex(),
            expires: now + ttl,
            token: sha256(token),
        };
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(sha256(&id), session);
        SignedIn { id }
    }

    /// The live session the cookie `id` names, if it has not expired and was signed in
    /// with the current admin `token`. A stale one is dropped.
    pub fn find(&self, id: &str, token: &str) -> Option<Live> {
        let key = sha256(id);
        let mut map = self.map();
        let session = map.get(&key)?;
        let current: bool = session.token.ct_eq(&sha256(token)).into();
        if session.expires <= Instant::now() || !current {
            map.remove(&key);
            return None;
        }
        Some(Live {
            csrf: session.csrf.clone(),
            key,
        })
    }

    /// Ends a session (sign-out).
    pub fn end(&self, live: &Live) {
        self.map().remove(&live.key);
    }
}

/// The `Set-Cookie` value for a new session.
pub fn cookie(id: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age={}{}",
        ttl.as_secs().max(1),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn cleared(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session id in a request's `Cookie` headers, if any.
pub fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_session_is_random_and_never_the_token() {
        let s = Sessions::default();
        let a = s.start(TOKEN, Duration::from_secs(60));
        let b = s.start(TOKEN, Duration::from_secs(60));
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 64);
        assert!(!a.id.contains(TOKEN));
        let live = s.find(&a.id, TOKEN).expect("live");
        assert_ne!(live.csrf, a.id);
        assert_ne!(
            live.csrf,
            s.find(&b.id, TOKEN).expect("live").csrf,
            "one CSRF token per session"
        );
        assert!(s.find("nope", TOKEN).is_none());
    }

    #[test]
    fn a_session_ends_at_expiry_sign_out_and_token_change() {
        let s = Sessions::default();
        let short = s.start(TOKEN, Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.find(&short.id, TOKEN).is_none(), "expired");
        let a = s.start(TOKEN, Duration::from_secs(60));
        assert!(
            s.find(&a.id, "another-token-another-token-1234").is_none(),
            "a rotated token ends it"
        );
        assert!(s.find(&a.id, TOKEN).is_none(), "and it stays ended");
        let b = s.start(TOKEN, Duration::from_secs(60));
        let live = s.find(&b.id, TOKEN).expect("live");
        s.end(&live);
        assert!(s.find(&b.id, TOKEN).is_none(), "signed out");
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.start(TOKEN, Duration::from_secs(10));
        for _ in 0..MAX_SESSIONS {
            s.start(TOKEN, Duration::from_secs(60));
        }
        assert_eq!(s.map().len(), MAX_SESSIONS);
        assert!(s.find(&first.id, TOKEN).is_none(), "the oldest went");
    }

    #[test]
    fn cookies() {
        let c = cookie("abc", Duration::from_secs(43_200), false);
        assert_eq!(
            c,
            "slatis_admin=abc; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=43200"
        );
        assert!(cookie("abc", Duration::from_secs(1), true).ends_with("; Secure"));
        assert!(cleared(false).contains("Max-Age=0"));
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "a=1; slatis_admin=xyz; b=2".parse().expect("header"),
        );
        assert_eq!(presented(&h), Some("xyz"));
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "slatis_adminx=1".parse().expect("header"),
        );
        assert_eq!(presented(&h), None);
    }
}
