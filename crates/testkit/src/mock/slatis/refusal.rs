//! Why the mock refuses a request body or query, each reason with the page of the Slatis
//! docs it comes from ([`SlatisRefusal::doc`]), the URL rule every webhook create and
//! update passes ([`check_url`]), and the one shape of every refusal: `{"success":false,
//! "error":{"code","message"}}` ([`error`]).
//!
//! Invariant: a URL passes only if it is `https` and its host is a name other than
//! `localhost` or an IP literal outside the private, loopback and link-local ranges.

use super::super::chassis::reply::Reply;
use reqwest::Url;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why the mock refused a request, each with the doc that says the real API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlatisRefusal {
    /// A webhook URL whose scheme is not `https`.
    NotHttps,
    /// A webhook URL at a private address (`10/8`, `172.16/12`, `192.168/16`; and IPv6
    /// unique-local `fc00::/7`, inferred).
    PrivateAddress,
    /// A webhook URL at loopback (`127/8`, `::1`, `localhost`; `0.0.0.0` and `::`
    /// inferred).
    Loopback,
    /// A webhook URL at a link-local address (`169.254/16`, `fe80::/10`).
    LinkLocal,
    /// A webhook URL that is not an absolute URL with a host.
    BadUrl,
    /// A webhook with no event types.
    NoEvents,
    /// An event type Slatis does not send.
    UnknownEvent,
    /// A body that is not a JSON object, a field of the wrong type, or an unknown field
    /// (inferred: the docs list no other fields).
    BadBody,
    /// A body over 256 KB.
    TooLarge,
    /// A bookings query parameter out of its range or format (`limit`, a date, a cursor).
    BadQuery,
}

impl SlatisRefusal {
    /// Every refusal the mock implements.
    pub const ALL: [Self; 10] = [
        Self::NotHttps,
        Self::PrivateAddress,
        Self::Loopback,
        Self::LinkLocal,
        Self::BadUrl,
        Self::NoEvents,
        Self::UnknownEvent,
        Self::BadBody,
        Self::TooLarge,
        Self::BadQuery,
    ];

    /// The page that documents it.
    pub fn doc(self) -> &'static str {
        match self {
            Self::NotHttps
            | Self::PrivateAddress
            | Self::Loopback
            | Self::LinkLocal
            | Self::BadUrl
            | Self::NoEvents
            | Self::UnknownEvent
            | Self::BadBody => "https://docs.slatis.com/webhooks",
            Self::TooLarge => "https://api.slatis.com/openapi.json",
            Self::BadQuery => "https://docs.slatis.com/bookings",
        }
    }
}

/// A refused request: why, and the message its answer carries.
#[derive(Debug, Clone)]
pub(super) struct Refused {
    pub(super) why: SlatisRefusal,
    pub(super) message: String,
}

impl Refused {
    pub(super) fn new(why: SlatisRefusal, message: impl Into<String>) -> Self {
        Self {
            why,
            message: message.into(),
        }
    }

    /// 400 `validation_error` (413 for a body over the limit; its code is inferred).
    pub(super) fn reply(&self) -> Reply {
        if self.why == SlatisRefusal::TooLarge {
            return error(413, "payload_too_large", &self.message);
        }
        error(400, "validation_error", &self.message)
    }
}

/// Slatis's error envelope.
pub(super) fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({ "success": false, "error": { "code": code, "message": message } }),
    )
}

/// The webhook URL rule: "Webhook URLs must be publicly reachable HTTPS endpoints"; the
/// real API may also resolve names and refuse private answers (not documented: not done).
pub(super) fn check_url(text: &str) -> Result<(), Refused> {
    let url = Url::parse(text).map_err(|_| {
        Refused::new(
            SlatisRefusal::BadUrl,
            format!("url {text:?} is not a valid URL"),
        )
    })?;
    if url.scheme() != "https" {
        return Err(Refused::new(SlatisRefusal::NotHttps, "url must use https"));
    }
    let refused = |why, what: &str| {
        Err(Refused::new(
            why,
            format!("url must be publicly reachable: {what} addresses are not allowed"),
        ))
    };
    match host_class(&url) {
        Some(SlatisRefusal::Loopback) => refused(SlatisRefusal::Loopback, "loopback"),
        Some(SlatisRefusal::LinkLocal) => refused(SlatisRefusal::LinkLocal, "link-local"),
        Some(SlatisRefusal::PrivateAddress) => refused(SlatisRefusal::PrivateAddress, "private"),
        Some(why) => Err(Refused::new(why, format!("url {text:?} has no host"))),
        None => Ok(()),
    }
}

/// Which refused class a URL's host is in; `None` for a public host.
fn host_class(url: &Url) -> Option<SlatisRefusal> {
    let Some(host) = url.host_str() else {
        return Some(SlatisRefusal::BadUrl);
    };
    match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(IpAddr::V4(ip)) => v4_class(ip),
        Ok(IpAddr::V6(ip)) => v6_class(ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some(SlatisRefusal::Loopback)
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<SlatisRefusal> {
    if ip.is_loopback() || ip.is_unspecified() {
        Some(SlatisRefusal::Loopback)
    } else if ip.is_link_local() {
        Some(SlatisRefusal::LinkLocal)
    } else if ip.is_private() {
        Some(SlatisRefusal::PrivateAddress)
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<SlatisRefusal> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() || ip.is_unspecified() {
        Some(SlatisRefusal::Loopback)
    } else if first & 0xffc0 == 0xfe80 {
        Some(SlatisRefusal::LinkLocal)
    } else if first & 0xfe00 == 0xfc00 {
        Some(SlatisRefusal::PrivateAddress)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_pass() {
        for good in [
            "https://hooks.example.com/webhooks/acme",
            "https://hooks.example.test:8443/x",
            "https://8.8.8.8/x",
            "https://[2001:db8::1]/x",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("http://hooks.example.com/x", SlatisRefusal::NotHttps),
            ("https://10.1.2.3/x", SlatisRefusal::PrivateAddress),
            ("https://172.20.0.1/x", SlatisRefusal::PrivateAddress),
            ("https://192.168.1.1/x", SlatisRefusal::PrivateAddress),
            ("https://[fd00::1]/x", SlatisRefusal::PrivateAddress),
            ("https://127.0.0.1:8080/x", SlatisRefusal::Loopback),
            ("https://[::1]/x", SlatisRefusal::Loopback),
            ("https://LOCALHOST/x", SlatisRefusal::Loopback),
            ("https://a.localhost/x", SlatisRefusal::Loopback),
            ("https://[::ffff:127.0.0.1]/x", SlatisRefusal::Loopback),
            ("https://169.254.169.254/x", SlatisRefusal::LinkLocal),
            ("https://[fe80::1]/x", SlatisRefusal::LinkLocal),
            ("not a url", SlatisRefusal::BadUrl),
        ] {
            assert_eq!(check_url(bad).map_err(|r| r.why).err(), Some(why), "{bad}");
        }
    }
}
