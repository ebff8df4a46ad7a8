//! The request log every mock keeps: one [`Request`] record per request, written on
//! arrival and completed when the answer goes out, with the mock's own reason when its
//! schema refused the request.
//!
//! Invariants: every request is recorded, in arrival order, whatever it is answered (401,
//! 429 and token endpoint calls included); a record's `status` is 0 until the answer goes
//! out, and stays 0 when the answer does not complete (dropped, endless or dripped) or the
//! client gave up first.

use super::auth::Credentials;
use super::wire::parse_pairs;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;

/// A request a mock got. `R` is why the mock's schema refused it, in the mock's own terms.
#[derive(Debug, Clone)]
pub struct Request<R> {
    /// The method.
    pub method: String,
    /// The path, with the query.
    pub path: String,
    /// The headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The bearer token of the `Authorization` header, if any.
    pub token: Option<String>,
    /// The value of the `x-api-token` header (Pipedrive's API token header), if any.
    pub api_token: Option<String>,
    /// Whether the URL carried an `api_token` query parameter (used or not).
    pub token_in_url: bool,
    /// The API version the path names, for a mock whose paths carry one (Salesforce's
    /// `/services/data/vXX.X/…`: `"60.0"`).
    pub api_version: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with (0: not answered, or the answer did not complete:
    /// dropped, endless or dripped).
    pub status: u16,
    /// Why the mock's schema refused it, if it did.
    pub refusal: Option<R>,
}

impl<R> Request<R> {
    /// The record of a request that just arrived.
    pub fn arrived(
        (method, uri, headers): (&Method, &Uri, &HeaderMap),
        credentials: &Credentials,
        api_version: Option<String>,
        body: &[u8],
    ) -> Self {
        Self {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            token: credentials.bearer.clone(),
            api_token: credentials.api_token.clone(),
            token_in_url: credentials.url_token.is_some(),
            api_version,
            body: body.to_vec(),
            at: Instant::now(),
            status: 0,
            refusal: None,
        }
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A field of a form-urlencoded body (a token endpoint's), decoded.
    pub fn form_field(&self, name: &str) -> Option<String> {
        parse_pairs(&String::from_utf8_lossy(&self.body))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Every request a mock got, in arrival order.
#[derive(Debug)]
pub struct RequestLog<R> {
    requests: Vec<Request<R>>,
}

impl<R> Default for RequestLog<R> {
    fn default() -> Self {
        Self {
            requests: Vec::new(),
        }
    }
}

impl<R: Clone> RequestLog<R> {
    /// Records a request; its index.
    pub fn push(&mut self, request: Request<R>) -> usize {
        self.requests.push(request);
        self.requests.len() - 1
    }

    /// Notes why the schema refused request `index`.
    pub fn refused(&mut self, index: usize, refusal: Option<R>) {
        if let Some(r) = self.requests.get_mut(index) {
            r.refusal = refusal;
        }
    }

    /// Notes the status request `index` was answered with.
    pub fn answered(&mut self, index: usize, status: u16) {
        if let Some(r) = self.requests.get_mut(index) {
            r.status = status;
        }
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Request<R>> {
        self.requests.clone()
    }

    /// The requests so far that pass `keep`.
    pub fn matching(&self, keep: impl Fn(&Request<R>) -> bool) -> Vec<Request<R>> {
        self.requests.iter().filter(|r| keep(r)).cloned().collect()
    }
}
