//! The one way out to a CRM: [`Transport`] per connector instance, [`Outbound`] per step.
//!
//! Invariants:
//! - every request waits for the instance's rolling-window rate limit before it leaves;
//! - every request has the instance's timeout;
//! - in dry run nothing leaves: the request is recorded (credentials masked) and the
//!   connector gets the reply it said to assume;
//! - transport failures are classed: timeouts and connection errors are retryable, and
//!   the messages never carry a URL (which could hold a credential);
//! - an answer is read by [`answer`]: its body only up to [`answer::MAX_ANSWER_BYTES`] and
//!   within the timeout, and a redirect is refused.

use super::answer;
use super::limit::{Limiter, RateLimit, SharedWindows};
use crate::delivery::DeliveryError;
use crate::redact::Redactor;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// One request a dry run would have sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunRecord {
    /// The HTTP method.
    pub method: String,
    /// The URL, without user info, its query values masked.
    pub url: String,
    /// Headers, credentials masked.
    pub headers: Vec<(String, String)>,
    /// The body: JSON where it is JSON, else text; absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Collects the requests of one job in dry run.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<DryRunRecord>>);

impl Recorder {
    /// The requests recorded so far.
    pub fn take(&self) -> Vec<DryRunRecord> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn push(&self, r: DryRunRecord) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(r);
    }
}

/// The reply a connector assumes for a request in dry run (e.g. "no search results").
#[derive(Debug, Clone)]
pub struct DryRunReply {
    status: u16,
    body: Value,
}

impl DryRunReply {
    /// A 200 with this JSON body.
    pub fn json(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// A reply with this status and JSON body.
    pub fn status(status: u16, body: Value) -> Self {
        Self { status, body }
    }
}

/// A CRM's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, cut to `max` characters, for error messages.
    pub fn excerpt(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(max) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }

    /// The time `Retry-After` names (seconds or an HTTP date), if any; `None` when it is
    /// not one of those. Any number of seconds is read (a number too large for any clock
    /// is the latest representable time): how long a job really waits is the queue's
    /// decision, which caps it.
    pub fn retry_after(&self) -> Option<DateTime<Utc>> {
        let v = self
            .headers
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            return Some(crate::time::in_seconds(v.parse().unwrap_or(u64::MAX)));
        }
        DateTime::parse_from_rfc2822(v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The failure of a token request (`POST …/token`) this reply answered: retryable on
    /// 5xx, else permanent (the credentials were refused). The message is `what`, the
    /// status and the endpoint's `error` / `error_description` (or `message`); it never
    /// holds what was sent.
    pub fn token_refused(&self, what: &str) -> DeliveryError {
        let body = self.json();
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let reason = [text("error"), text("error_description"), text("message")]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let message = format!("{what}: HTTP {} {reason}", self.status.as_u16())
            .trim_end()
            .to_owned();
        if self.status.is_server_error() {
            DeliveryError::retryable(message)
        } else {
            DeliveryError::permanent(message)
        }
    }

    /// The default reading of a status: 2xx is success; 429 is rate-limited (until
    /// `Retry-After`, else a minute); 408 and 5xx are retryable (not before
    /// `Retry-After`); any other status is permanent. `what` describes the failure from
    /// the reply (the CRM's own message).
    ///
    /// # Errors
    /// The classed [`DeliveryError`] for a non-2xx status.
    pub fn check(self, what: impl FnOnce(&Reply) -> String) -> Result<Reply, DeliveryError> {
        let status = self.status;
        if status.is_success() {
            return Ok(self);
        }
        let message = format!("HTTP {}: {}", status.as_u16(), what(&self));
        Err(if status == StatusCode::TOO_MANY_REQUESTS {
            let until = self
                .retry_after()
                .unwrap_or_else(|| crate::time::in_seconds(60));
            DeliveryError::rate_limited(message, until)
        } else if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
            DeliveryError::retry_after(message, self.retry_after())
        } else {
            DeliveryError::permanent(message)
        })
    }
}

/// The HTTP side of one connector instance: shared client, rate limits, timeout, dry run.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
    limiter: Option<Arc<Limiter>>,
    /// The CRM's lower limit for search calls, taken with `limiter`.
    search: Option<Arc<Limiter>>,
    /// Where every replica's sends are counted, when the store keeps shared windows:
    /// then the limits are taken there, not in `limiter` / `search`.
    shared: Option<SharedBudget>,
    timeout: Duration,
    dry_run: bool,
    redactor: Redactor,
}

/// The process-wide HTTP client: connection pools are shared by every instance; it does
/// not follow redirects (a CRM API never needs it, and it keeps requests where the config
/// points them).
fn shared_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("slatis-sync/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}

/// An instance's rate windows in a store every replica shares.
#[derive(Clone)]
struct SharedBudget {
    windows: Arc<dyn SharedWindows>,
    /// The instance's name there (`tenant/instance`).
    key: String,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport with these rate limits (every call, and search calls) and timeout;
    /// `dry_run` records instead of sending.
    pub fn new(
        (rate_limit, search_rate_limit): (Option<RateLimit>, Option<RateLimit>),
        timeout: Duration,
        dry_run: bool,
        redactor: Redactor,
    ) -> Self {
        Self {
            client: shared_client(),
            limiter: rate_limit.map(|l| Arc::new(Limiter::new(l))),
            search: search_rate_limit.map(|l| Arc::new(Limiter::new(l))),
            shared: None,
            timeout,
            dry_run,
            redactor,
        }
    }

    /// Whether this instance is in dry run.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Takes over `old`'s rate budgets (a config reload of the same instance): each of
    /// `old`'s limiters itself where the limit is the same, so old and new jobs share one
    /// window; else a new limiter that counts the sends `old`'s window already holds.
    pub fn inherit_limits(&mut self, old: &Self) {
        for (new, old) in [
            (&mut self.limiter, &old.limiter),
            (&mut self.search, &old.search),
        ] {
            if let (Some(new), Some(old)) = (new, old) {
                *new = Limiter::carry_over(old, new.limit());
            }
        }
    }

    /// Counts this instance's sends in `windows`, under `key` (`tenant/instance`), so that
    /// every replica sharing them stays within one budget.
    pub fn share_windows(&mut self, windows: Arc<dyn SharedWindows>, key: String) {
        self.shared = Some(SharedBudget { windows, key });
    }

    /// A transport like this one that only records (for `slatis-sync render`).
    pub fn recording(&self) -> Self {
        Self {
            client: self.client.clone(),
            limiter: None,
            search: None,
            shared: None,
            timeout: self.timeout,
            dry_run: true,
            redactor: self.redactor.clone(),
        }
    }

    /// The handle a step uses, recording into `recorder` in dry run.
    pub fn outbound<'a>(&'a self, recorder: &'a Recorder) -> Outbound<'a> {
        Outbound {
            transport: self,
            recorder,
        }
    }
}

/// A step's way out: build requests with [`Outbound::request`], send with [`Outbound::send`].
pub struct Outbound<'a> {
    transport: &'a Transport,
    recorder: &'a Recorder,
}

impl Outbound<'_> {
    /// Starts a request on the shared client.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.transport.client.request(method, url)
    }

    /// Whether requests are only recorded.
    pub fn dry_run(&self) -> bool {
        self.transport.dry_run
    }

    /// Sends a request (after the rate limit allows it, within the timeout) and returns
    /// the reply whatever its status; read it with [`Reply::check`] or by hand. In dry
    /// run, records the request and returns `assume` instead.
    ///
    /// # Errors
    /// A retryable error on timeout or connection failure; permanent if the request
    /// cannot be built.
    pub async fn send(
        &self,
        request: RequestBuilder,
        assume: DryRunReply,
    ) -> Result<Reply, DeliveryError> {
        self.send_within(request, assume, false).await
    }

    /// [`Outbound::send`] for a search call: also within the instance's
    /// `search_rate_limit` (a CRM's lower limit for search), both limits taken at one
    /// instant.
    ///
    /// # Errors
    /// As [`Outbound::send`].
    pub async fn send_search(
        &self,
        request: RequestBuilder,
        assume: DryRunReply,
    ) -> Result<Reply, DeliveryError> {
        self.send_within(request, assume, true).await
    }

    async fn send_within(
        &self,
        request: RequestBuilder,
        assume: DryRunReply,
        search: bool,
    ) -> Result<Reply, DeliveryError> {
        let t = self.transport;
        let request = request.timeout(t.timeout).build().map_err(|e| {
            DeliveryError::permanent(format!("cannot build the request: {}", e.without_url()))
        })?;
        if t.dry_run {
            self.recorder.push(self.record(&request));
            return Ok(Reply {
                status: StatusCode::from_u16(assume.status).unwrap_or(StatusCode::OK),
                headers: HeaderMap::new(),
                body: Bytes::from(assume.body.to_string()),
            });
        }
        self.take_slot(search).await?;
        let method = request.method().clone();
        let response = t
            .client
            .execute(request)
            .await
            .map_err(|e| classify(&e, t.timeout, &method))?;
        let status = response.status();
        if answer::is_redirect(status) {
            return Err(answer::refused_redirect(&method, &response));
        }
        let headers = response.headers().clone();
        let body =
            answer::read_body(response, &method, |e| classify(e, t.timeout, &method)).await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Waits for the instance's rate limit (and, for a `search` call, its search limit):
    /// in the windows every replica shares where the store keeps them, else in this
    /// process.
    async fn take_slot(&self, search: bool) -> Result<(), DeliveryError> {
        let t = self.transport;
        let search = t.search.as_deref().filter(|_| search);
        let Some(shared) = &t.shared else {
            let limiters: Vec<&Limiter> = t.limiter.as_deref().into_iter().chain(search).collect();
            Limiter::acquire_all(&limiters).await;
            return Ok(());
        };
        let windows: Vec<(String, RateLimit)> = [("all", t.limiter.as_deref()), ("search", search)]
            .into_iter()
            .filter_map(|(name, l)| Some((format!("{}/{name}", shared.key), l?.limit())))
            .collect();
        if !windows.is_empty() {
            let wait = shared.windows.reserve(&windows).await?;
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The request as it may be written down: sensitive header values (credentials the
    /// connector marked) and credential headers masked, known secrets masked everywhere,
    /// the URL without user info or query values.
    fn record(&self, request: &reqwest::Request) -> DryRunRecord {
        let r = &self.transport.redactor;
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| {
                let shown = if v.is_sensitive() {
                    crate::redact::MASK.to_owned()
                } else {
                    r.header(k.as_str(), &String::from_utf8_lossy(v.as_bytes()))
                        .into_owned()
                };
                (k.to_string(), shown)
            })
            .collect();
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .filter(|b| !b.is_empty())
            .map(|b| {
                let mut v = serde_json::from_slice(b)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into()));
                r.redact_json(&mut v);
                v
            });
        DryRunRecord {
            method: request.method().to_string(),
            url: r.url(request.url().as_str()),
            headers,
            body,
        }
    }
}

fn classify(e: &reqwest::Error, timeout: Duration, method: &Method) -> DeliveryError {
    if e.is_timeout() {
        DeliveryError::retryable(format!(
            "{method} timed out after {}",
            humantime::format_duration(timeout)
        ))
    } else if e.is_connect() {
        DeliveryError::retryable(format!("{method} could not connect: {}", source_text(e)))
    } else {
        DeliveryError::retryable(format!("{method} failed: {}", source_text(e)))
    }
}

/// The innermost cause, which says what happened (reset, refused, …) without the URL.
fn source_text(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn transport(general: u32, search: u32) -> Transport {
        let per = Duration::from_secs(1);
        Transport::new(
            (
                Some(RateLimit::new(general, per)),
                Some(RateLimit::new(search, per)),
            ),
            per,
            false,
            Redactor::default(),
        )
    }

    /// Shared windows that record what they were asked and grant a fixed wait.
    #[derive(Default)]
    struct Windows(Mutex<Vec<Vec<(String, RateLimit)>>>);

    #[async_trait::async_trait]
    impl SharedWindows for Windows {
        async fn reserve(
            &self,
            windows: &[(String, RateLimit)],
        ) -> Result<Duration, DeliveryError> {
            self.0.lock().expect("lock").push(windows.to_vec());
            Ok(Duration::from_millis(250))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shared_windows_take_the_place_of_the_local_limiters() {
        let windows = Arc::new(Windows::default());
        let mut t = transport(1, 1);
        t.share_windows(
            Arc::clone(&windows) as Arc<dyn SharedWindows>,
            "acme/crm".into(),
        );
        let recorder = Recorder::default();
        let out = t.outbound(&recorder);
        let start = Instant::now();
        for search in [false, true, true] {
            out.take_slot(search).await.expect("slot");
        }
        // Three sends at a limit of 1/s: the shared windows' waits, not the local limiter's.
        assert_eq!(start.elapsed(), Duration::from_millis(750));
        let per = Duration::from_secs(1);
        let asked = windows.0.lock().expect("lock").clone();
        assert_eq!(
            asked,
            vec![
                vec![("acme/crm/all".to_owned(), RateLimit::new(1, per))],
                vec![
                    ("acme/crm/all".to_owned(), RateLimit::new(1, per)),
                    ("acme/crm/search".to_owned(), RateLimit::new(1, per))
                ],
                vec![
                    ("acme/crm/all".to_owned(), RateLimit::new(1, per)),
                    ("acme/crm/search".to_owned(), RateLimit::new(1, per))
                ],
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reloaded_instance_inherits_its_rate_budgets() {
        let old = transport(3, 2);
        let general = old.limiter.as_deref().expect("general");
        for _ in 0..3 {
            general.acquire().await;
        }
        // The same limits: the very same limiters, shared with jobs still on `old`.
        let mut same = transport(3, 2);
        same.inherit_limits(&old);
        assert!(Arc::ptr_eq(
            same.limiter.as_ref().expect("general"),
            old.limiter.as_ref().expect("general")
        ));
        assert!(Arc::ptr_eq(
            same.search.as_ref().expect("search"),
            old.search.as_ref().expect("search")
        ));
        // A changed limit: a new limiter whose window holds `old`'s three sends.
        let mut changed = transport(4, 2);
        changed.inherit_limits(&old);
        let limiter = changed.limiter.as_deref().expect("general");
        assert!(!Arc::ptr_eq(
            changed.limiter.as_ref().expect("general"),
            old.limiter.as_ref().expect("general")
        ));
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "a fourth send fits in 4/s");
        limiter.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "a fifth waits for the window the old sends opened"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().expect("header"));
        let reply = Reply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers,
            body: Bytes::new(),
        };
        let at = reply.retry_after().expect("seconds");
        assert!((at - Utc::now()).num_seconds() >= 6);
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2037 07:28:00 GMT".parse().expect("header"),
        );
        let reply = Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: Bytes::new(),
        };
        assert_eq!(
            reply.retry_after().map(|t| t.timestamp()),
            Some(2_139_722_880)
        );
    }

    fn with_retry_after(value: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", value.parse().expect("header"));
        Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn any_retry_after_is_read_without_panicking() {
        let huge = with_retry_after("99999999999999999").retry_after();
        assert!(huge.is_some_and(|t| t > Utc::now() + chrono::TimeDelta::days(365 * 1000)));
        assert_eq!(
            with_retry_after("99999999999999999999999999").retry_after(),
            Some(DateTime::<Utc>::MAX_UTC),
            "more seconds than any clock holds"
        );
        let past = with_retry_after("Mon, 01 Jan 2001 00:00:00 GMT").retry_after();
        assert_eq!(past.map(|t| t.timestamp()), Some(978_307_200));
        for garbage in ["soon", "-5", "1.5", "", "Wed, 99 Oct 2037 07:28:00 GMT"] {
            assert_eq!(with_retry_after(garbage).retry_after(), None, "{garbage:?}");
        }
        // a 429 whose Retry-After is garbage waits the default minute
        let e = with_retry_after("soon")
            .check(|_| String::new())
            .expect_err("429");
        match e {
            DeliveryError::RateLimited { until, .. } => {
                let wait = until - Utc::now();
                assert!(
                    wait > chrono::TimeDelta::seconds(58) && wait <= chrono::TimeDelta::seconds(60)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_are_classed() {
        let reply = |code: u16| Reply {
            status: StatusCode::from_u16(code).expect("code"),
            headers: HeaderMap::new(),
            body: Bytes::from("oops"),
        };
        assert!(reply(204).check(|_| String::new()).is_ok());
        for (code, class) in [
            (400, "permanent"),
            (404, "permanent"),
            (408, "retryable"),
            (429, "rate_limited"),
            (500, "retryable"),
            (503, "retryable"),
        ] {
            let e = reply(code).check(|r| r.excerpt(10)).expect_err("fails");
            assert_eq!(e.class(), class, "{code}");
            assert!(e.message().contains(&code.to_string()) && e.message().contains("oops"));
        }
    }
}
