//! Associations between records: made with a create (`associations` in its body) or
//! through v4 (`PUT …/associations/default/…`, or labelled), and read through v4 from
//! either end (<https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview>).
//!
//! Invariants: an association type id must be defined from the one type to the other
//! (HubSpot's own, or a label defined in the account); a link is kept once, in the
//! direction it was made, and read from its other end as HubSpot's inverse type.

use super::super::chassis::reply::{Answer, Reply};
use super::super::chassis::wire::pair;
use super::HubSpot;
use super::answers::{bad_request, not_found, now_text, parse_json};
use super::model::Association;
use super::schema::Schema;
use super::search::parse_after;
use super::values::scalar_text;
use serde_json::{Value, json};

/// The most associations one read answers (`limit`'s maximum and default).
const ASSOCIATIONS_PAGE: usize = 500;

impl HubSpot {
    /// The `associations` of a create body: (to type, to id, category, type id).
    pub(super) fn create_associations(
        &self,
        object_type: &str,
        body: &Value,
    ) -> Result<Vec<(String, u64, String, u32)>, Reply> {
        let Some(list) = body.get("associations") else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| bad_request("\"associations\" must be an array"))?;
        let mut links = Vec::new();
        for item in list {
            let to = item
                .get("to")
                .and_then(|to| to.get("id"))
                .and_then(scalar_text)
                .ok_or_else(|| bad_request("An association needs \"to\": {\"id\": …}"))?;
            let to_id = to.parse::<u64>().ok();
            let to_type = to_id
                .and_then(|id| self.objects.type_of(id))
                .ok_or_else(|| bad_request(&format!("Association target {to} does not exist")))?
                .to_owned();
            let specs = item
                .get("types")
                .ok_or_else(|| bad_request("An association needs \"types\""))?;
            for (category, type_id) in
                self.schema
                    .association_specs(object_type, &to_type, specs)?
            {
                links.push((
                    to_type.clone(),
                    to_id.unwrap_or_default(),
                    category,
                    type_id,
                ));
            }
        }
        Ok(links)
    }

    pub(super) fn link(
        &mut self,
        from: (&str, u64),
        to: (&str, u64),
        category: &str,
        type_id: u32,
    ) {
        let exists = self
            .associations
            .iter()
            .any(|a| a.from_id == from.1 && a.to_id == to.1 && a.type_id == type_id);
        if !exists {
            self.associations.push(Association {
                from_type: from.0.to_owned(),
                from_id: from.1,
                to_type: to.0.to_owned(),
                to_id: to.1,
                category: category.to_owned(),
                type_id,
            });
        }
    }

    pub(super) fn associate(
        &mut self,
        (from_type, from_id): (&str, &str),
        (to_type, to_id): (&str, &str),
        labels: Option<&[u8]>,
    ) -> Answer {
        let started_at = now_text();
        self.schema.known_type(from_type)?;
        self.schema.known_type(to_type)?;
        let find = |object_type: &str, id: &str| {
            id.parse::<u64>()
                .ok()
                .filter(|id| self.objects.get(object_type, *id).is_some())
        };
        let (Some(from), Some(to)) = (find(from_type, from_id), find(to_type, to_id)) else {
            return Err(not_found());
        };
        let specs = match labels {
            None => vec![(
                "HUBSPOT_DEFINED".to_owned(),
                Schema::default_association(from_type, to_type).ok_or_else(|| {
                    bad_request(&format!(
                        "There is no default association from {from_type} to {to_type}"
                    ))
                })?,
            )],
            Some(body) => self
                .schema
                .association_specs(from_type, to_type, &parse_json(body)?)?,
        };
        let mut results = Vec::new();
        for (category, type_id) in specs {
            self.link((from_type, from), (to_type, to), &category, type_id);
            results.push(json!({
                "from": { "id": from.to_string() },
                "to": { "id": to.to_string() },
                "associationSpec": {
                    "associationCategory": category,
                    "associationTypeId": type_id,
                },
            }));
        }
        Ok(Reply::json(
            200,
            json!({
                "status": "COMPLETE",
                "results": results,
                "startedAt": started_at,
                "completedAt": now_text(),
            }),
        ))
    }

    /// `GET /crm/v4/objects/{type}/{id}/associations/{toType}` (`limit` at most 500,
    /// `after` a cursor): the records of `to_type` linked to the record, in either
    /// direction, read from the primary store (no search lag):
    /// <https://developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/get-associations>.
    pub(super) fn associations_of(
        &self,
        from_type: &str,
        from_id: &str,
        to_type: &str,
        query: &[(String, String)],
    ) -> Answer {
        self.schema.known_type(from_type)?;
        self.schema.known_type(to_type)?;
        let id = from_id
            .parse::<u64>()
            .ok()
            .filter(|id| self.objects.get(from_type, *id).is_some())
            .ok_or_else(not_found)?;
        let limit = match pair(query, "limit") {
            None => ASSOCIATIONS_PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=ASSOCIATIONS_PAGE).contains(l))
                .ok_or_else(|| bad_request("limit must be a number from 1 to 500"))?,
        };
        let offset = parse_after(pair(query, "after"))?;
        // Each link is kept once, in the direction it was made; read it from either end.
        let mut linked: Vec<(u64, Vec<Value>)> = Vec::new();
        for a in &self.associations {
            let (other, type_id) =
                if a.from_type == from_type && a.from_id == id && a.to_type == to_type {
                    (a.to_id, a.type_id)
                } else if a.to_type == from_type && a.to_id == id && a.from_type == to_type {
                    // seen from the other end: HubSpot's inverse type (meeting → contact
                    // 200 reads as contact → meeting 199)
                    let inverse = (a.category == "HUBSPOT_DEFINED")
                        .then(|| Schema::default_association(from_type, to_type))
                        .flatten();
                    (a.from_id, inverse.unwrap_or(a.type_id))
                } else {
                    continue;
                };
            let spec = json!({ "category": a.category, "typeId": type_id, "label": Value::Null });
            match linked.iter_mut().find(|(o, _)| *o == other) {
                Some((_, specs)) => specs.push(spec),
                None => linked.push((other, vec![spec])),
            }
        }
        linked.sort_by_key(|(other, _)| *other);
        let results: Vec<Value> = linked
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(other, specs)| json!({ "toObjectId": other, "associationTypes": specs }))
            .collect();
        let mut answer = json!({ "results": results });
        if offset + limit < linked.len() {
            answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
        }
        Ok(Reply::json(200, answer))
    }
}
