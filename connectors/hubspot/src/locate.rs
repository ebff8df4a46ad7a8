//! Finding the record a `match: {property, value}` names.
//!
//! In order: `property: hs_object_id` (or `id`) is the id itself; `external_id: true` is a
//! unique property, read from HubSpot's primary store; otherwise the record map (a record
//! this service wrote or found before), then — when the record map has nothing, e.g.
//! after a create whose answer was lost — the candidates:
//! - a step with `associate:` looks among the records its first association names
//!   (`associate[0]`, e.g. the contact's meetings), read through the v4 associations and
//!   a batch read of `property` — HubSpot's primary store, so a record created a moment
//!   ago (with its association, in the same call) is found;
//! - any other step searches (`EQ`), which lags new records by seconds.
//!
//! Invariant: several candidates resolve by `match.on_many`, ordered oldest first by
//! `createdAt`, ties by id ([`oldest_first`]).

use crate::api::{Api, Found, oldest_first};
use crate::links::Link;
use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::StepContext;
use slatis_core::step::{OnMany, RenderedMatch};

/// A match's context: the object, the match, the step's links.
pub struct Target<'a> {
    /// The object type.
    pub object: &'a str,
    /// The step's match.
    pub m: &'a RenderedMatch,
    /// The step's `associate` items.
    pub links: &'a [Link<'a>],
}

/// Whether a match's property is the record id.
pub fn is_id(property: &str) -> bool {
    matches!(property, "hs_object_id" | "id")
}

fn same(object: &str, property: &str, a: &str, b: &str) -> bool {
    // contacts' email is kept as typed and compared ignoring case
    if property == "email" && crate::links::canonical(object) == "contacts" {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The record `t` names, or `None`. `assume_found` is what a dry run pretends.
///
/// # Errors
/// A call's classed failure; with `on_many: fail`, several records.
pub async fn locate(
    api: &Api<'_>,
    cx: &StepContext<'_>,
    t: &Target<'_>,
    assume_found: bool,
) -> Result<Option<String>, DeliveryError> {
    let m = t.m;
    if is_id(&m.property) {
        return Ok(Some(m.value.clone()));
    }
    if m.external_id {
        let found = api
            .check(api.read(t.object, &m.value, Some(&m.property), &[]).await)
            .await?;
        return Ok(found.map(|f| f.id));
    }
    if let Some(id) = cx.records.get(t.object, &m.property, &m.value).await? {
        return Ok(Some(id));
    }
    candidates(api, t, assume_found).await
}

/// The record `t` names among its candidates (the first association's records, else a
/// search), by `on_many`; the record map is not read.
///
/// # Errors
/// A call's classed failure; with `on_many: fail`, several records.
pub async fn candidates(
    api: &Api<'_>,
    t: &Target<'_>,
    assume_found: bool,
) -> Result<Option<String>, DeliveryError> {
    let (m, object) = (t.m, t.object);
    let (found, hint) = match t.links.first() {
        Some(link) => (
            among_associated(api, t, link, assume_found).await?,
            format!(
                "the {object} linked to {} {} hold it more than once; delete the duplicates in HubSpot",
                link.to, link.id
            ),
        ),
        None => {
            let newest_first = m.on_many == OnMany::Newest;
            let found = api
                .check(
                    api.search(object, &m.property, &m.value, newest_first, assume_found)
                        .await,
                )
                .await?;
            (found, "match on a unique property (external_id)".to_owned())
        }
    };
    m.choose(oldest_first(found), object, &hint)
}

/// The records of `t.object` linked to `link`'s record whose `t.m.property` is the match's
/// value.
async fn among_associated(
    api: &Api<'_>,
    t: &Target<'_>,
    link: &Link<'_>,
    assume_found: bool,
) -> Result<Vec<Found>, DeliveryError> {
    let (object, m) = (t.object, t.m);
    let ids = api
        .check(api.associated(link.to, link.id, object, assume_found).await)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let assume = json!({ "status": "COMPLETE",
        "results": [{ "id": "dry-run", "properties": { &m.property: &m.value } }] });
    let records = api
        .check(
            api.batch_read(object, &ids, &[m.property.as_str()], &assume)
                .await,
        )
        .await?;
    Ok(records
        .into_iter()
        .filter(|r| {
            r.properties
                .get(&m.property)
                .and_then(Value::as_str)
                .is_some_and(|v| same(object, &m.property, v, &m.value))
        })
        .collect())
}
