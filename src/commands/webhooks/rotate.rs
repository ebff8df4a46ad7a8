//! `webhooks rotate`: Slatis signs with the new secret from the moment `rotate-secret`
//! answers (no grace period is documented). With `--admin-url` (one per replica) the
//! rotation has no gap: (a) each replica opens a rotation window for the tenant (a
//! delivery matching no secret is held, not refused); (b) Slatis rotates; (c) the new
//! secret is added to each replica at runtime, which releases the held deliveries;
//! (d) the secret is printed with what to do to make it permanent. Without it, the
//! command prints the secret and the steps, and says what fails until the reload.
//!
//! Invariants: nothing is rotated unless every replica opened its window; once Slatis
//! has rotated, the new secret is printed whatever else fails (it is shown only once).

use super::{Api, how_to_configure};
use anyhow::{Context as _, bail};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// One admin call: `POST {admin}/admin/api/tenants/{tenant}/{what}`.
async fn admin_post(
    http: &reqwest::Client,
    admin: &str,
    token: &str,
    tenant: &str,
    what: &str,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/admin/api/tenants/{tenant}/{what}",
        admin.trim_end_matches('/')
    );
    let answer = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("{admin}: no answer"))?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        bail!(
            "{admin}: {status} {}",
            text.chars().take(200).collect::<String>()
        );
    }
    Ok(())
}

pub(super) async fn run(
    api: &Api,
    id: &str,
    admin_urls: &[String],
    token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let tenant = api.tenant.as_str();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    if !admin_urls.is_empty() {
        let Some(token) = token else {
            bail!(
                "--admin-url needs the admin token: SLATIS_SYNC_ADMIN_TOKEN, --admin-token or admin.token in the config"
            );
        };
        for admin in admin_urls {
            admin_post(
                &http,
                admin,
                token,
                tenant,
                "rotation",
                json!({ "seconds": 60 }),
            )
            .await
            .context("opening the rotation window failed; nothing was rotated")?;
        }
        eprintln!("rotation window open on {} replica(s)", admin_urls.len());
    }
    let rotated = api
        .client
        .rotate_secret(id)
        .await
        .map_err(|e| api.explain(e, "webhooks:manage"))?;
    let mut failed = Vec::new();
    if let Some(token) = token.filter(|_| !admin_urls.is_empty()) {
        for admin in admin_urls {
            let body = json!({ "secret": rotated.secret.expose() });
            if let Err(e) = admin_post(&http, admin, token, tenant, "signing-secrets", body).await {
                failed.push(format!("{e:#}"));
            }
        }
    }
    eprintln!(
        "Slatis now signs webhook {id}'s deliveries with a new secret, printed once on stdout."
    );
    if admin_urls.is_empty() {
        eprintln!(
            "Deliveries from now until the service knows the new secret are answered 401; Slatis retries them (after 1 s, 5 s, 25 s, 125 s, 625 s), so finish within minutes. Next time, pass --admin-url for a rotation without a gap."
        );
    } else if failed.is_empty() {
        eprintln!(
            "Every replica verifies with it now (in memory: lost at a restart). To make it permanent:"
        );
    } else {
        eprintln!(
            "These replicas did not take the new secret; they answer its deliveries 401 until their config has it:"
        );
        for f in &failed {
            eprintln!("  {f}");
        }
    }
    how_to_configure(tenant, true);
    println!("{}", rotated.secret.expose());
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
