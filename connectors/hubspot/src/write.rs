//! Writing a step's record: create, update, upsert, each under the properties' write
//! modes (`on: create | empty | always`).
//!
//! Invariants:
//! - a create sends every property and its links inline where their type id is known;
//!   a create answered 409 "… Existing ID: N" (a unique value is taken, typically by a
//!   retry whose first answer was lost) updates N instead;
//! - an update sends the `always` properties and the `empty` ones whose field HubSpot
//!   holds empty — read first, only when there are `empty` ones — never the `create` ones;
//!   an update with nothing to send sends no PATCH (it checks the record exists);
//! - a native upsert (`batch/upsert` by a unique property) cannot be conditional, so it is
//!   used only when every property is written `always`; otherwise the record is read by
//!   its unique property first, then updated or created;
//! - a record the record map names that HubSpot no longer has (404) is forgotten and
//!   looked up again.

use crate::api::{Api, Written};
use crate::error::HubSpotError;
use crate::links::Link;
use crate::locate::{Target, candidates, locate};
use slatis_core::DeliveryError;
use slatis_core::connector::StepContext;
use slatis_core::step::{RenderedMatch, RenderedStep, is_blank};

/// What a write did: the record, and the links still to make (those a create did not
/// make inline).
pub struct Done<'a> {
    /// The record written.
    pub written: Written,
    /// The links to make with the v4 association calls.
    pub pending: Vec<&'a Link<'a>>,
}

impl<'a> Done<'a> {
    /// An existing record, updated: every link is (re)made (the default association
    /// call is idempotent).
    fn updated(written: Written, links: &'a [Link<'a>]) -> Self {
        Self {
            written,
            pending: links.iter().collect(),
        }
    }
}

pub fn not_found(object: &str, m: &RenderedMatch) -> DeliveryError {
    DeliveryError::retryable(format!(
        "no {object} with {} = {:?} (HubSpot's search can lag new records by seconds; retried)",
        m.property, m.value
    ))
}

fn gone(object: &str, key: &str) -> HubSpotError {
    HubSpotError::NotFound {
        message: format!("no {object} {key}"),
    }
}

/// Updates the record `key` names (its id, or its unique `id_property`'s value) with
/// what an update sends under the write modes.
///
/// # Errors
/// [`HubSpotError::NotFound`] when there is no such record; any call's failure.
pub async fn update_by(
    api: &Api<'_>,
    object: &str,
    key: &str,
    id_property: Option<&str>,
    step: &RenderedStep,
) -> Result<Written, HubSpotError> {
    let empty: Vec<&str> = step.empty_only().collect();
    if empty.is_empty() {
        let props = step.update_properties(|_| false);
        if !props.is_empty() {
            return api.update(object, key, id_property, &props).await;
        }
    }
    let current = api
        .read(object, key, id_property, &empty)
        .await?
        .ok_or_else(|| gone(object, key))?;
    let props = step.update_properties(|f| is_blank(current.properties.get(f)));
    if props.is_empty() {
        return Ok(Written {
            id: current.id,
            created: false,
        });
    }
    api.update(object, &current.id, None, &props).await
}

/// Creates the step's record (every property; links inline where possible).
///
/// # Errors
/// A call's classed failure.
pub async fn create<'a>(
    api: &Api<'_>,
    object: &str,
    step: &RenderedStep,
    links: &'a [Link<'a>],
) -> Result<Done<'a>, DeliveryError> {
    let mut inline = Vec::new();
    let mut pending = Vec::new();
    for link in links {
        match link.inline(object) {
            Some(item) => inline.push(item),
            None => pending.push(link),
        }
    }
    match api.create(object, &step.create_properties(), &inline).await {
        Ok(written) => Ok(Done { written, pending }),
        // A unique value is taken (a contact's email): the record exists, so this
        // create — typically a retry whose first answer was lost — updates it.
        Err(HubSpotError::Conflict {
            existing_id: Some(id),
            ..
        }) => {
            let written = api
                .check(update_by(api, object, &id, None, step).await)
                .await?;
            Ok(Done::updated(written, links))
        }
        other => api
            .check(other)
            .await
            .map(|written| Done { written, pending }),
    }
}

/// `upsert`: finds the record (see [`locate`]) and updates it, or creates it.
///
/// # Errors
/// A call's classed failure.
pub async fn upsert<'a>(
    api: &Api<'_>,
    cx: &StepContext<'_>,
    t: &Target<'a>,
    step: &RenderedStep,
) -> Result<Done<'a>, DeliveryError> {
    let (object, m) = (t.object, t.m);
    if m.external_id {
        if step.write_modes.is_empty() {
            let written = api
                .check(
                    api.upsert_unique(object, &m.property, &m.value, &step.properties)
                        .await,
                )
                .await?;
            return Ok(Done::updated(written, t.links));
        }
        return match update_by(api, object, &m.value, Some(&m.property), step).await {
            Err(HubSpotError::NotFound { .. }) => create(api, object, step, t.links).await,
            other => Ok(Done::updated(api.check(other).await?, t.links)),
        };
    }
    if let Some(known) = locate(api, cx, t, false).await? {
        match update_by(api, object, &known, None, step).await {
            Err(HubSpotError::NotFound { .. }) => {
                if let Some(w) = update_found_again(api, cx, t, step, &known, false).await? {
                    return Ok(Done::updated(w, t.links));
                }
            }
            other => return Ok(Done::updated(api.check(other).await?, t.links)),
        }
    }
    create(api, object, step, t.links).await
}

/// `update`: finds the record and updates it; no record is a retried failure.
///
/// # Errors
/// A call's classed failure; retryable when there is no record (yet).
pub async fn update<'a>(
    api: &Api<'_>,
    cx: &StepContext<'_>,
    t: &Target<'a>,
    step: &RenderedStep,
) -> Result<Done<'a>, DeliveryError> {
    let (object, m) = (t.object, t.m);
    if m.external_id || crate::locate::is_id(&m.property) {
        let id_property = m.external_id.then_some(m.property.as_str());
        return match update_by(api, object, &m.value, id_property, step).await {
            Err(HubSpotError::NotFound { .. }) => Err(not_found(object, m)),
            other => Ok(Done::updated(api.check(other).await?, t.links)),
        };
    }
    let Some(known) = locate(api, cx, t, true).await? else {
        return Err(not_found(object, m));
    };
    let written = match update_by(api, object, &known, None, step).await {
        Err(HubSpotError::NotFound { .. }) => update_found_again(api, cx, t, step, &known, true)
            .await?
            .ok_or_else(|| not_found(object, m))?,
        other => api.check(other).await?,
    };
    Ok(Done::updated(written, t.links))
}

/// `known` is gone from HubSpot (deleted or merged since): forgets it, looks again and
/// updates what it finds instead, if anything.
async fn update_found_again(
    api: &Api<'_>,
    cx: &StepContext<'_>,
    t: &Target<'_>,
    step: &RenderedStep,
    known: &str,
    assume_found: bool,
) -> Result<Option<Written>, DeliveryError> {
    cx.records
        .forget(t.object, &t.m.property, &t.m.value)
        .await?;
    match candidates(api, t, assume_found)
        .await?
        .filter(|f| f != known)
    {
        Some(found) => api
            .check(update_by(api, t.object, &found, None, step).await)
            .await
            .map(Some),
        None => Ok(None),
    }
}
