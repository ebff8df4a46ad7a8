//! Which call a request is (`route`), and the way every authenticated call goes: the
//! session check, the daily API limit, the fault queue, then the call itself
//! ([`Inner::process`]).
//!
//! Invariants: the token endpoint takes no fault and counts no API usage; a call past the
//! daily limit is 403 `REQUEST_LIMIT_EXCEEDED` and does not count; every authenticated
//! answer carries `Sforce-Limit-Info: api-usage=N/MAX`.

use super::super::Fault;
use super::super::reply::{After, Reply};
use super::super::wire::{decode_segment, parse_pairs};
use super::Inner;
use super::answers::{api_error, invalid_session, not_found};
use axum::http::{Method, Uri};

/// An API version from a path (`v60.0`).
#[derive(Debug, Clone)]
pub(super) struct Version {
    /// `60.0`.
    pub(super) text: String,
    major: u32,
}

impl Version {
    fn parse(segment: &str) -> Option<Self> {
        let text = segment.strip_prefix('v')?;
        let (major, minor) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            major: major.parse().ok()?,
        })
    }

    /// The version [`super::MockSalesforce::seed`] acts as.
    pub(super) fn seed() -> Self {
        Self {
            text: "62.0".to_owned(),
            major: 62,
        }
    }

    /// Whether an upsert that updates answers 200 with a body (46.0 on) rather than 204.
    pub(super) fn upsert_answers_update(&self) -> bool {
        self.major >= 46
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    Patch,
    Delete,
}

/// A `/services/data/vXX.X/…` call.
#[derive(Debug)]
enum Call {
    Limits,
    Query,
    Create(String),
    Record {
        verb: Verb,
        object: String,
        id: String,
    },
    External {
        verb: Verb,
        object: String,
        field: String,
        value: String,
    },
    NotAllowed {
        method: String,
        allowed: &'static str,
    },
    NotFound,
}

/// What a request is for.
#[derive(Debug)]
enum Route {
    Token,
    /// Answered once authenticated.
    Api(Version, Call),
    /// No such endpoint; not authenticated.
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let verb = match method.as_str() {
        "GET" => Some(Verb::Get),
        "PATCH" => Some(Verb::Patch),
        "DELETE" => Some(Verb::Delete),
        _ => None,
    };
    let not_allowed = |allowed: &'static str| Call::NotAllowed {
        method: method.to_string(),
        allowed,
    };
    match s.as_slice() {
        ["services", "oauth2", "token"] if method == Method::POST => Route::Token,
        ["services", "data", version, rest @ ..] => {
            let Some(version) = Version::parse(version) else {
                return Route::Api(
                    Version {
                        text: (*version).to_owned(),
                        major: 0,
                    },
                    Call::NotFound,
                );
            };
            let call = match (rest, verb) {
                (["limits"], Some(Verb::Get)) => Call::Limits,
                (["limits"], _) => not_allowed("GET"),
                (["query"], Some(Verb::Get)) => Call::Query,
                (["query"], _) => not_allowed("GET"),
                (["sobjects", object], _) if method == Method::POST => {
                    Call::Create((*object).to_owned())
                }
                (["sobjects", _], Some(Verb::Get)) => Call::NotFound,
                (["sobjects", _], _) => not_allowed("GET,POST"),
                (["sobjects", object, id], Some(verb)) => Call::Record {
                    verb,
                    object: (*object).to_owned(),
                    id: (*id).to_owned(),
                },
                (["sobjects", _, _], None) => not_allowed("GET,PATCH,DELETE"),
                (["sobjects", object, field, value], Some(verb)) => Call::External {
                    verb,
                    object: (*object).to_owned(),
                    field: (*field).to_owned(),
                    value: (*value).to_owned(),
                },
                (["sobjects", _, _, _], None) => not_allowed("GET,PATCH,DELETE"),
                _ => Call::NotFound,
            };
            Route::Api(version, call)
        }
        _ => Route::Unknown,
    }
}

/// The API version of a `/services/data/vXX.X/…` path.
pub(super) fn path_version(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/services/data/")?;
    let segment = rest.split('/').next()?;
    Version::parse(segment).map(|v| v.text)
}

/// The record(s) an external-id path names: `…/sobjects/{object}/{field}/{value}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExternalId<'a> {
    pub(super) object: &'a str,
    pub(super) field: &'a str,
    pub(super) value: &'a str,
}

impl Inner {
    /// Answers a request; the second part says how to deliver the answer.
    pub(super) fn process(
        &mut self,
        method: &Method,
        uri: &Uri,
        token: Option<&str>,
        body: &[u8],
    ) -> (Reply, After) {
        let (version, call) = match route(method, uri.path()) {
            Route::Token => return (self.grant(body), After::Answer),
            Route::Unknown => return (not_found(), After::Answer),
            Route::Api(version, call) => (version, call),
        };
        if !token.is_some_and(|t| self.sessions.contains(t)) {
            return (invalid_session(), After::Answer);
        }
        let over = self
            .options
            .daily_limit
            .is_some_and(|limit| self.api_used >= limit);
        if !over {
            self.api_used += 1;
        }
        let usage = format!("api-usage={}/{}", self.api_used, self.daily_max());
        let (mut reply, after) = if over {
            let reply = api_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                None,
            );
            (reply, After::Answer)
        } else {
            Fault::answer(
                self.faults.pop_front(),
                |status| {
                    api_error(
                        status,
                        "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred.",
                        None,
                    )
                },
                || self.apply(&version, call, uri, body),
            )
        };
        reply.headers.push(("sforce-limit-info", usage));
        (reply, after)
    }

    fn apply(&mut self, version: &Version, call: Call, uri: &Uri, body: &[u8]) -> Reply {
        let query = parse_pairs(uri.query().unwrap_or_default());
        let answer = match call {
            Call::Limits => Ok(self.limits()),
            Call::Query => self.query(version, &query),
            Call::Create(object) => self.create(version, &object, body),
            Call::Record { verb, object, id } => match verb {
                Verb::Get => self.read(version, &object, &id, &query),
                Verb::Patch => self.update(version, &object, &id, body),
                Verb::Delete => self.delete(&object, &id),
            },
            Call::External {
                verb,
                object,
                field,
                value,
            } => {
                let key = ExternalId {
                    object: &object,
                    field: &field,
                    value: &value,
                };
                self.external(version, verb, &key, &query, body)
            }
            Call::NotAllowed { method, allowed } => Err(api_error(
                405,
                "METHOD_NOT_ALLOWED",
                &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
                None,
            )),
            Call::NotFound => Err(not_found()),
        };
        answer.unwrap_or_else(|reply| reply)
    }
}
