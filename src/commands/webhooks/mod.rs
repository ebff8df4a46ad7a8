//! `slatis-sync webhooks register|list|rotate|test|enable` (DESIGN §5): the tenant's
//! Slatis webhook managed through the Slatis API with its `slatis_api_key`.
//!
//! Invariants: a signing secret is printed once, alone on stdout (everything else goes to
//! stderr) and only by `register` and `rotate`; the API key is never printed; each
//! Slatis refusal is explained with what to fix (the key, or the scope it lacks).

mod rotate;

use anyhow::{Context as _, bail};
use slatis_api::{Client, NewWebhook, Webhook};
use slatis_core::Config;
use slatis_core::config::{EVENT_TYPES, Tenant};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The `webhooks` subcommands.
#[derive(clap::Args)]
pub struct WebhooksArgs {
    /// The Slatis API base URL.
    #[arg(long, global = true, default_value = slatis_api::DEFAULT_BASE_URL)]
    slatis_url: String,
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(clap::Subcommand)]
enum WebhooksCommand {
    /// Create the Slatis webhook for the tenant's endpoint, subscribed to exactly the
    /// event types its routes use; print its signing secret once (stdout).
    Register {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The service's public HTTPS base URL, e.g. https://hooks.example.com
        /// (`/webhooks/<tenant>` is appended unless the URL already ends with it).
        #[arg(long)]
        public_url: String,
    },
    /// What Slatis has registered: each webhook, active or auto-disabled and why.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Rotate a webhook's signing secret; with --admin-url, with no failed delivery.
    Rotate {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The admin URL of each running replica (repeat the flag), e.g.
        /// http://127.0.0.1:9090: the new secret is added to each before any delivery
        /// signed with it can be refused.
        #[arg(long = "admin-url")]
        admin_urls: Vec<String>,
        /// The admin token [default: admin.token of the config].
        #[arg(long, env = "SLATIS_SYNC_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// The webhook id (`wh_…`, see `webhooks list`).
        id: String,
    },
    /// Ask Slatis for a test delivery and report whether it arrived.
    Test {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The webhook id.
        id: String,
    },
    /// Re-enable an auto-disabled webhook, and print the backfill for the gap.
    Enable {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The webhook id.
        id: String,
    },
}

/// Runs a `webhooks` subcommand.
pub async fn run(config_path: &Path, args: WebhooksArgs) -> anyhow::Result<ExitCode> {
    let config = super::load(config_path)?;
    let tenant_name = match &args.command {
        WebhooksCommand::Register { tenant, .. }
        | WebhooksCommand::List { tenant }
        | WebhooksCommand::Rotate { tenant, .. }
        | WebhooksCommand::Test { tenant, .. }
        | WebhooksCommand::Enable { tenant, .. } => tenant.clone(),
    };
    let (tenant, api) = tenant_api(
        &config,
        config_path,
        &tenant_name,
        &args.slatis_url,
        "the webhooks:manage scope",
    )?;
    match args.command {
        WebhooksCommand::Register { public_url, .. } => register(&api, tenant, &public_url).await,
        WebhooksCommand::List { .. } => list(&api).await,
        WebhooksCommand::Rotate {
            admin_urls,
            admin_token,
            id,
            ..
        } => {
            let token = admin_token
                .filter(|t| !t.is_empty())
                .or_else(|| config.admin.as_ref().and_then(|a| a.token.clone()));
            rotate::run(&api, &id, &admin_urls, token.as_deref()).await
        }
        WebhooksCommand::Test { id, .. } => test(&api, &id).await,
        WebhooksCommand::Enable { id, .. } => enable(&api, &id).await,
    }
}

/// The Slatis client of one tenant.
pub(crate) struct Api {
    /// The client, with the tenant's key.
    pub(crate) client: Client,
    /// The tenant's name.
    pub(crate) tenant: String,
}

/// The tenant `name` of `config` and a Slatis client at `slatis_url` with its
/// `slatis_api_key`; `needs` says what the key needs, for the error when it has none.
pub(crate) fn tenant_api<'c>(
    config: &'c Config,
    config_path: &Path,
    name: &str,
    slatis_url: &str,
    needs: &str,
) -> anyhow::Result<(&'c Tenant, Api)> {
    let Some(tenant) = config.tenants.get(name) else {
        let known: Vec<&str> = config.tenants.keys().map(String::as_str).collect();
        bail!(
            "no tenant {name:?} in {} (tenants: {})",
            config_path.display(),
            known.join(", ")
        );
    };
    let Some(key) = tenant.slatis_api_key.as_deref().filter(|k| !k.is_empty()) else {
        bail!(
            "tenant {name} has no slatis_api_key: add `slatis_api_key: ${{{}_SLATIS_API_KEY}}` to tenants.{name} (a Slatis secret key with {needs})",
            env_name(name)
        );
    };
    let api = Api {
        client: Client::new(slatis_url, key)?,
        tenant: name.to_owned(),
    };
    Ok((tenant, api))
}

impl Api {
    /// A Slatis failure explained: which key, which scope `scope` the call needs.
    pub(crate) fn explain(&self, e: slatis_api::Error, scope: &str) -> anyhow::Error {
        let t = &self.tenant;
        match e.status() {
            Some(401) => anyhow::anyhow!(
                "Slatis refused the API key of tenant {t} ({e}): check tenants.{t}.slatis_api_key"
            ),
            Some(403) => anyhow::anyhow!(
                "the API key of tenant {t} lacks the {scope} scope ({e}): give the key {scope} in Slatis, or use one that has it"
            ),
            _ => anyhow::Error::new(e),
        }
    }
}

/// `ACME_CORP` for `acme-corp`: the stem of suggested environment variable names.
fn env_name(tenant: &str) -> String {
    tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The event types `tenant`'s routes use, in Slatis's order (`*` is all of them).
fn routed_events(tenant: &Tenant) -> Vec<String> {
    EVENT_TYPES
        .iter()
        .filter(|e| tenant.routes.contains_key("*") || tenant.routes.contains_key(**e))
        .map(|e| (*e).to_owned())
        .collect()
}

/// The webhook URL for `tenant` from the public base URL: `…/webhooks/<tenant>` is
/// appended unless it is already there (a path prefix, e.g. a proxy's, is kept).
fn endpoint(public_url: &str, tenant: &str) -> String {
    let tail = format!("/webhooks/{tenant}");
    let base = public_url.trim_end_matches('/');
    if base.ends_with(&tail) {
        base.to_owned()
    } else {
        format!("{base}{tail}")
    }
}

/// How to put a secret in the config, on stderr.
fn how_to_configure(tenant: &str, replaces_old: bool) {
    let var = format!("{}_SLATIS_SECRET", env_name(tenant));
    eprintln!(
        "Put it in the config (the value only in the environment, e.g. {var}):\n  tenants:\n    {tenant}:\n      signing_secrets:\n        - ${{{var}}}"
    );
    if replaces_old {
        eprintln!(
            "replacing the old secret, then reload the service (SIGHUP, or POST /admin/api/reload)."
        );
    } else {
        eprintln!("then reload the service (SIGHUP, or POST /admin/api/reload).");
    }
}

async fn register(api: &Api, tenant: &Tenant, public_url: &str) -> anyhow::Result<ExitCode> {
    let url = endpoint(public_url, &tenant.name);
    let events = routed_events(tenant);
    if events.is_empty() {
        bail!(
            "tenant {} routes no event type: nothing to subscribe to (add routes first)",
            tenant.name
        );
    }
    let existing = api
        .client
        .list_webhooks()
        .await
        .map_err(|e| api.explain(e, "webhooks:read"))?;
    if let Some(w) = existing.iter().find(|w| w.url == url) {
        bail!(
            "Slatis already has webhook {} for {url}: see `slatis-sync webhooks list --tenant {}`; `webhooks rotate` gives it a new secret",
            w.id,
            tenant.name
        );
    }
    let new = NewWebhook {
        url: url.clone(),
        events,
        description: Some(format!("slatis-sync tenant {}", tenant.name)),
    };
    let made = api
        .client
        .create_webhook(&new)
        .await
        .map_err(|e| api.explain(e, "webhooks:manage"))?;
    eprintln!(
        "created webhook {} for {url}\nevents: {}\nIts signing secret is printed once, on stdout; Slatis never shows it again.",
        made.webhook.id,
        made.webhook.events.join(", ")
    );
    how_to_configure(&tenant.name, false);
    println!("{}", made.secret.expose());
    Ok(ExitCode::SUCCESS)
}

/// `active`, or `DISABLED` with why.
fn state(w: &Webhook) -> String {
    if w.is_active {
        "active".to_owned()
    } else {
        match &w.failure_reason {
            Some(why) => format!("AUTO-DISABLED: {why}"),
            None => "disabled".to_owned(),
        }
    }
}

async fn list(api: &Api) -> anyhow::Result<ExitCode> {
    let hooks = api
        .client
        .list_webhooks()
        .await
        .map_err(|e| api.explain(e, "webhooks:read"))?;
    if hooks.is_empty() {
        eprintln!("no webhooks registered (see `slatis-sync webhooks register`)");
        return Ok(ExitCode::SUCCESS);
    }
    let width = hooks.iter().map(|w| w.id.len()).max().unwrap_or(2).max(2);
    println!("{:width$}  {:8}  URL / EVENTS", "ID", "STATE");
    for w in &hooks {
        let short = if w.is_active { "active" } else { "disabled" };
        println!("{:width$}  {short:8}  {}", w.id, w.url);
        println!("{:width$}  {:8}  {}", "", "", w.events.join(", "));
        if !w.is_active {
            println!("{:width$}  {:8}  {}", "", "", state(w));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(api: &Api, id: &str) -> anyhow::Result<ExitCode> {
    let delivery = api
        .client
        .test_webhook(id)
        .await
        .map_err(|e| api.explain(e, "webhooks:manage"))?;
    eprintln!(
        "Slatis is sending a test BOOKING_CREATED ({})…",
        delivery.id
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let history = api
            .client
            .deliveries(id)
            .await
            .map_err(|e| api.explain(e, "webhooks:read"))?;
        let attempt = history
            .iter()
            .find(|d| d.id == delivery.id)
            .and_then(|d| d.attempts.last().cloned());
        if let Some(a) = attempt {
            return Ok(match a.response_status {
                Some(s) if (200..300).contains(&s) => {
                    println!("arrived: our endpoint answered {s}");
                    ExitCode::SUCCESS
                }
                Some(401) => {
                    println!(
                        "did not arrive: our endpoint answered 401 (the webhook's secret is not in tenants.{}.signing_secrets)",
                        api.tenant
                    );
                    ExitCode::FAILURE
                }
                Some(s) => {
                    println!("did not arrive: our endpoint answered {s}");
                    ExitCode::FAILURE
                }
                None => {
                    println!(
                        "did not arrive: no answer ({})",
                        a.error.as_deref().unwrap_or("unknown error")
                    );
                    ExitCode::FAILURE
                }
            });
        }
        if Instant::now() >= deadline {
            println!("no attempt reported by Slatis within 20 s");
            return Ok(ExitCode::FAILURE);
        }
    }
}

async fn enable(api: &Api, id: &str) -> anyhow::Result<ExitCode> {
    let before = api
        .client
        .get_webhook(id)
        .await
        .map_err(|e| api.explain(e, "webhooks:read"))?;
    if before.is_active {
        eprintln!("webhook {id} is already active");
        return Ok(ExitCode::SUCCESS);
    }
    // when it stopped delivering: Slatis's disabled_at (inferred field), else the
    // first failed delivery since the last one that arrived
    let since = match before.disabled_at.clone() {
        Some(at) => Some(at),
        None => api.client.deliveries(id).await.ok().and_then(|history| {
            history
                .iter()
                .take_while(|d| d.status != "delivered")
                .last()
                .map(|d| d.created_at.clone())
        }),
    };
    api.client
        .set_active(id, true)
        .await
        .map_err(|e| api.explain(e, "webhooks:manage"))
        .context("re-enable")?;
    eprintln!(
        "webhook {id} is active again{}",
        before
            .failure_reason
            .map(|r| format!(" (it was disabled: {r})"))
            .unwrap_or_default()
    );
    eprintln!(
        "Bookings made while it was disabled were not delivered. To feed them through tenant {}'s routes (already received events are skipped):",
        api.tenant
    );
    println!(
        "slatis-sync backfill --tenant {} --since {}",
        api.tenant,
        since.as_deref().unwrap_or("<when it was disabled>")
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_appended_once() {
        assert_eq!(
            endpoint("https://h.example.com", "acme"),
            "https://h.example.com/webhooks/acme"
        );
        assert_eq!(
            endpoint("https://h.example.com/slatis/", "acme"),
            "https://h.example.com/slatis/webhooks/acme"
        );
        assert_eq!(
            endpoint("https://h.example.com/webhooks/acme/", "acme"),
            "https://h.example.com/webhooks/acme"
        );
        assert_eq!(env_name("acme-corp.eu"), "ACME_CORP_EU");
    }
}
