//! The `aud` of a JWT bearer assertion when the config names none, from the login URL.
//!
//! Salesforce wants the authorization server's URL, not the org's My Domain: "Use the
//! authorization server's URL for the audience value: https://login.salesforce.com,
//! https://test.salesforce.com, or https://site.force.com/customers if implementing for
//! an Experience Cloud site" ("OAuth 2.0 JWT Bearer Flow for Server-to-Server
//! Integration", <https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5>);
//! a My Domain as `aud` is refused with `invalid_grant` "audience is invalid".
//!
//! Invariant: a sandbox's login URL gives `https://test.salesforce.com` — the login host
//! itself, an enhanced-domain sandbox (`*.sandbox.my.salesforce.com`), a scratch org
//! (`*.scratch.my.salesforce.com`) or a legacy sandbox My Domain (`name--sandbox.my.salesforce.com`:
//! `--` joins a My Domain to its sandbox name); an Experience Cloud site
//! (`*.my.site.com`, `*.force.com`) gives the site's URL; anything else (a production My
//! Domain, `login.salesforce.com`, a proxy) gives `https://login.salesforce.com`.

/// The audience of a production org.
pub const PRODUCTION: &str = "https://login.salesforce.com";

/// The audience of a sandbox.
pub const SANDBOX: &str = "https://test.salesforce.com";

/// The default `aud` for a login URL (already checked to be a URL).
pub fn default_audience(login_url: &str) -> String {
    let Some(host) = reqwest::Url::parse(login_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return PRODUCTION.to_owned();
    };
    let my_domain = host.strip_suffix(".my.salesforce.com");
    let sandbox = host == "test.salesforce.com"
        || host.ends_with(".sandbox.my.salesforce.com")
        || host.ends_with(".scratch.my.salesforce.com")
        || my_domain.is_some_and(|name| name.contains("--"));
    let site = host.ends_with(".my.site.com")
        || (host.ends_with(".force.com") && !host.ends_with(".lightning.force.com"));
    if sandbox {
        SANDBOX.to_owned()
    } else if site {
        login_url.trim_end_matches('/').to_owned()
    } else {
        PRODUCTION.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_login_url() {
        for (login, aud) in [
            ("https://login.salesforce.com", PRODUCTION),
            ("https://test.salesforce.com/", SANDBOX),
            ("https://globex.my.salesforce.com", PRODUCTION),
            ("https://GLOBEX.MY.SALESFORCE.COM/", PRODUCTION),
            ("https://globex.develop.my.salesforce.com", PRODUCTION),
            ("https://globex--uat.sandbox.my.salesforce.com", SANDBOX),
            ("https://globex--uat.my.salesforce.com", SANDBOX),
            ("https://globex-dev-ed.scratch.my.salesforce.com", SANDBOX),
            (
                "https://globex.my.site.com/customers/",
                "https://globex.my.site.com/customers",
            ),
            (
                "https://globex.force.com/customers",
                "https://globex.force.com/customers",
            ),
            ("https://globex.lightning.force.com", PRODUCTION),
            ("http://127.0.0.1:8443", PRODUCTION),
            ("not a url", PRODUCTION),
        ] {
            assert_eq!(default_audience(login), aud, "{login}");
        }
    }
}
