//! The admin API's endpoints: every list with every filter, paging through several pages
//! while events arrive, wrong filters and cursors, replay by id and by filter, stats and
//! the last hour, a booking's timeline, and the OpenAPI document listing every route.

use crate::support::{call, run_all, signed, world};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use slatis_server::admin::{openapi, router};
use slatis_store::Outcome;
use slatis_testkit::fixtures::booking;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "admin-token-for-api-tests-0123456789";

fn req(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req")
}

struct Api(crate::support::World);

impl Api {
    /// A world whose tenant got `n` bookings `b0…`, attendee `pK@x.com` (K = i % 3).
    async fn new(tenant: &str, n: usize) -> Self {
        let api = Self(world(tenant, TOKEN).await);
        for i in 0..n {
            api.deliver(
                "BOOKING_CREATED",
                &format!("b{i}"),
                &format!("P{}@X.com", i % 3),
            )
            .await;
        }
        api
    }

    async fn deliver(&self, event: &str, booking_id: &str, email: &str) -> String {
        let tenant = self.tenant();
        let (status, answer) = call(
            slatis_server::ingress::router(Arc::clone(&self.0.shared)),
            signed(
                &format!("/webhooks/{tenant}"),
                &booking(event, booking_id, "Jo Doe", email),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["event_id"].as_str().expect("id").to_owned()
    }

    fn tenant(&self) -> String {
        self.0
            .shared
            .config()
            .tenants
            .keys()
            .next()
            .expect("tenant")
            .clone()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        call(router(Arc::clone(&self.0.shared)), req("GET", path)).await
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn post(&self, path: &str) -> (StatusCode, Value) {
        call(router(Arc::clone(&self.0.shared)), req("POST", path)).await
    }

    async fn run_all(&self, outcome: Outcome) -> Vec<i64> {
        run_all(&self.0.shared, outcome).await
    }

    /// Every item of a list, page by page; checks each page's size.
    async fn all(&self, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .ok(&format!("{path}{sep}limit={limit}&cursor={cursor}"))
                .await;
            let got = list(&page).as_array().expect("items").clone();
            assert!(got.len() <= limit);
            items.extend(got);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => return items,
            }
        }
    }
}

/// A time of an answer (RFC 3339 strings do not sort as text: the fraction's length varies).
fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

/// A page's items, under the list's own key (`events`, or `jobs` for jobs and dead
/// letters).
fn list(page: &Value) -> &Value {
    page.get("events").unwrap_or(&page["jobs"])
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].to_string()).collect()
}

#[tokio::test]
async fn lists_page_through_every_item_once_while_events_arrive() {
    let api = Api::new("api1", 12).await;
    // 3 full pages and a last one; an arrival after the first page is not in a later one
    let first = api.ok("/admin/api/events?limit=5").await;
    assert_eq!(list(&first).as_array().map(Vec::len), Some(5));
    api.deliver("BOOKING_CREATED", "late", "late@x.com").await;
    let mut seen = ids(list(&first).as_array().expect("items"));
    let mut cursor = first["next_cursor"].as_str().expect("more").to_owned();
    loop {
        let page = api
            .ok(&format!("/admin/api/events?limit=5&cursor={cursor}"))
            .await;
        seen.extend(ids(list(&page).as_array().expect("items")));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 12, "no repeats");

    let events = api.all("/admin/api/events", 4).await;
    assert_eq!(events.len(), 13);
    let times: Vec<_> = events.iter().map(|e| time(&e["received_at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let jobs = api.all("/admin/api/jobs", 7).await;
    assert_eq!(jobs.len(), 13);
    assert_eq!(ids(&jobs).into_iter().collect::<HashSet<_>>().len(), 13);
    api.run_all(Outcome::Dead).await;
    let dead = api.all("/admin/api/dead-letters", 3).await;
    assert_eq!(dead.len(), 13);
    assert!(
        dead.iter()
            .all(|d| d["status"] == "dead" && d["dead_since"].is_string())
    );
    // a page exactly as long as what is left ends without a cursor on the next call
    let whole = api.ok("/admin/api/jobs?limit=13").await;
    let next = whole["next_cursor"]
        .as_str()
        .expect("a full page has a cursor");
    let after = api
        .ok(&format!("/admin/api/jobs?limit=13&cursor={next}"))
        .await;
    assert_eq!(list(&after), &Value::Array(Vec::new()));
    assert_eq!(after["next_cursor"], Value::Null);
    // limits: the default, and the bound
    let default = api.ok("/admin/api/jobs").await;
    assert_eq!(list(&default).as_array().map(Vec::len), Some(13));
    assert!(api.ok("/admin/api/jobs?limit=100000").await["jobs"].is_array());
}

#[tokio::test]
async fn every_filter_narrows_every_list() {
    let api = Api::new("api2", 6).await;
    let cancelled = api.deliver("BOOKING_CANCELLED", "b1", "p1@x.com").await;
    // times are stored to the millisecond: the boundary falls clear of both sides
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let dead_ids = api.run_all(Outcome::Dead).await;
    api.deliver("BOOKING_CREATED", "b9", "p9@x.com").await;
    let t = api.tenant();
    let count = |v: &Value| list(v).as_array().map_or(0, Vec::len);
    let since = urlencode(&before.to_rfc3339());
    let cases: Vec<(String, usize, usize, usize)> = vec![
        // filter, events, jobs, dead letters
        (String::new(), 8, 7, 6),
        (format!("tenant={t}"), 8, 7, 6),
        ("tenant=nobody".into(), 0, 0, 0),
        ("status=dead".into(), 6, 6, 6),
        ("status=pending".into(), 1, 1, 0),
        ("event_type=BOOKING_CANCELLED".into(), 1, 0, 0),
        ("booking_id=b1".into(), 2, 1, 1),
        // p1@x.com holds b1 (created and cancelled) and b4
        ("email=P1%40X.COM".into(), 3, 2, 2),
        ("q=p1%40x.com".into(), 3, 2, 2),
        ("q=b9".into(), 1, 1, 0),
        (format!("event_id={cancelled}"), 1, 0, 0),
        (format!("since={since}"), 1, 1, 0),
        (format!("until={since}"), 7, 6, 6),
        (format!("booking_id=b2&tenant={t}&status=dead"), 1, 1, 1),
    ];
    for (filter, events, jobs, dead) in cases {
        for (list, want) in [("events", events), ("jobs", jobs), ("dead-letters", dead)] {
            if list == "dead-letters" && filter.starts_with("status=pending") {
                continue;
            }
            let got = api.ok(&format!("/admin/api/{list}?{filter}")).await;
            assert_eq!(count(&got), want, "{list}?{filter}: {got}");
        }
    }
    let found = api.ok("/admin/api/jobs?email=p2%40x.com").await;
    assert_eq!(list(&found)[0]["attendee_email"], "p2@x.com");
    assert_eq!(list(&found)[0]["booking_id"], "b5", "newest first");
    assert!(dead_ids.len() == 6);
}

/// Percent-encodes what a query value cannot hold as is (`+` and `:`).
fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn wrong_filters_cursors_and_ids_answer_400_with_a_json_error() {
    let api = Api::new("api3", 3).await;
    let events_cursor = api.ok("/admin/api/events?limit=1").await["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let wrong = [
        "/admin/api/jobs?status=weird".to_owned(),
        "/admin/api/events?status=weird".to_owned(),
        "/admin/api/dead-letters?status=done".to_owned(),
        "/admin/api/events?since=yesterday".to_owned(),
        "/admin/api/jobs?until=2026-13-01T00:00:00Z".to_owned(),
        "/admin/api/jobs?since=2026-05-02T00:00:00Z&until=2026-05-01T00:00:00Z".to_owned(),
        "/admin/api/jobs?limit=0".to_owned(),
        "/admin/api/jobs?limit=many".to_owned(),
        "/admin/api/jobs?cursor=not-a-cursor".to_owned(),
        "/admin/api/events?cursor=%%%".to_owned(),
        format!("/admin/api/jobs?cursor={events_cursor}"),
        "/admin/api/jobs?q=b1&booking_id=b2".to_owned(),
        "/admin/api/jobs/abc".to_owned(),
    ];
    for path in &wrong {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{path}: a JSON error: {body}");
    }
    let (_, body) = api.get("/admin/api/jobs?cursor=nope").await;
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("cursor")),
        "{body}"
    );
    let (status, body) = api.post("/admin/api/dead-letters/replay?since=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.get("/admin/api/jobs/424242").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no job 424242");
}

#[tokio::test]
async fn dead_letters_replay_by_id_and_by_filter() {
    let api = Api::new("api4", 6).await;
    let dead = api.run_all(Outcome::Dead).await;
    let detail = api.ok(&format!("/admin/api/jobs/{}", dead[0])).await;
    assert_eq!(detail["status"], "dead");
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["attempts_log"][0]["error"], "HTTP 400: no");
    assert_eq!(detail["attempts_log"][0]["job_id"], dead[0]);
    assert!(detail["event"]["data"]["attendee"]["email"].is_string());

    let (status, one) = api
        .post(&format!("/admin/api/dead-letters/{}/replay", dead[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["count"], 1);
    let (_, again) = api
        .post(&format!("/admin/api/dead-letters/{}/replay", dead[0]))
        .await;
    assert_eq!(again["count"], 0, "only dead jobs replay: {again}");
    // p1@x.com holds b1 and b4
    let (status, by_email) = api
        .post("/admin/api/dead-letters/replay?email=P1%40x.com")
        .await;
    assert_eq!(status, StatusCode::OK, "{by_email}");
    assert_eq!(by_email["count"], 2, "{by_email}");
    let (_, by_booking) = api
        .post("/admin/api/dead-letters/replay?booking_id=b5")
        .await;
    assert_eq!(by_booking["count"], 1);
    let (_, rest) = api.post("/admin/api/dead-letters/replay").await;
    assert_eq!(rest["count"], 2, "no filter: every other dead letter");
    let left = api.ok("/admin/api/dead-letters").await;
    assert_eq!(list(&left), &Value::Array(Vec::new()));
}

#[tokio::test]
async fn stats_count_per_tenant_and_plot_the_last_hour() {
    let api = Api::new("api5", 4).await;
    let ids = api.run_all(Outcome::Done).await;
    assert_eq!(ids.len(), 4);
    api.deliver("BOOKING_CREATED", "b9", "p9@x.com").await;
    let stats = api.ok("/admin/api/stats").await;
    assert_eq!(stats["queue"]["done"], 4);
    let tenant = &stats["tenants"][0];
    assert_eq!(tenant["name"], "api5");
    assert_eq!(tenant["connectors"][0]["type"], "script");
    assert_eq!(tenant["routes"][0], "BOOKING_CREATED");
    let counts = &tenant["counts"];
    assert_eq!(counts["received"], 5);
    assert_eq!(counts["delivered"], 4);
    assert_eq!(counts["queued"], 1);
    assert_eq!(counts["retrying"], 0);
    assert_eq!(counts["dead"], 0);
    let minutes = stats["last_hour"].as_array().expect("last hour");
    assert_eq!(minutes.len(), 60);
    let sum = |m: &[Value], k: &str| m.iter().map(|m| m[k].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(sum(minutes, "received"), 5);
    assert_eq!(sum(minutes, "delivered"), 4);
    let last = api.ok("/admin/api/stats/last-hour?tenant=api5").await;
    assert_eq!(last["tenant"], "api5");
    let mins = last["minutes"].as_array().expect("minutes");
    assert_eq!(mins.len(), 60);
    assert_eq!(sum(mins, "delivered"), 4);
    let none = api.ok("/admin/api/stats/last-hour?tenant=nobody").await;
    assert_eq!(
        sum(none["minutes"].as_array().expect("minutes"), "received"),
        0
    );
}

#[tokio::test]
async fn a_booking_timeline_has_every_event_and_attempt_in_time_order() {
    let api = Api::new("api6", 2).await;
    api.run_all(Outcome::Retry(chrono::Utc::now())).await;
    api.run_all(Outcome::Done).await;
    // times are kept to the millisecond: the cancellation lands clear after the attempt
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.deliver("BOOKING_CANCELLED", "b1", "p1@x.com").await;
    let t = api.ok("/admin/api/bookings/b1/timeline?tenant=api6").await;
    assert_eq!(t["booking_id"], "b1");
    assert_eq!(t["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(t["jobs"].as_array().map(Vec::len), Some(1));
    let entries = t["entries"].as_array().expect("entries");
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["received", "attempt", "attempt", "received"], "{t}");
    assert_eq!(entries[1]["attempt"]["outcome"], "retry");
    assert_eq!(entries[2]["attempt"]["outcome"], "done");
    assert_eq!(entries[2]["connector"], "crm");
    let at: Vec<_> = entries.iter().map(|e| time(&e["at"])).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(t["truncated"], false);
    let all = api.ok("/admin/api/bookings/b1/timeline").await;
    assert_eq!(all["entries"].as_array().map(Vec::len), Some(4));
    let other = api
        .ok("/admin/api/bookings/b1/timeline?tenant=nobody")
        .await;
    assert_eq!(other["entries"], Value::Array(Vec::new()));
}

/// Every route of the admin API, as `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /admin/api/stats",
    "GET /admin/api/stats/last-hour",
    "GET /admin/api/events",
    "GET /admin/api/jobs",
    "GET /admin/api/jobs/{id}",
    "GET /admin/api/dead-letters",
    "POST /admin/api/dead-letters/replay",
    "POST /admin/api/dead-letters/{id}/replay",
    "GET /admin/api/bookings/{booking_id}/timeline",
    "POST /admin/api/reload",
    "POST /admin/api/tenants/{tenant}/rotation",
    "POST /admin/api/tenants/{tenant}/signing-secrets",
    "GET /admin/api/openapi.json",
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_answers() {
    let api = Api::new("api7", 1).await;
    let (status, doc) = api.get("/admin/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, serde_json::to_value(openapi()).expect("json"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let expected: BTreeSet<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(documented, expected);
    for route in ROUTES {
        let (method, path) = route.split_once(' ').expect("route");
        let path = path
            .replace("{id}", "1")
            .replace("{booking_id}", "b0")
            .replace("{tenant}", "api7");
        let (status, body) = call(router(Arc::clone(&api.0.shared)), req(method, &path)).await;
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status)
                || body["error"] == "no job 1",
            "{route} is served: {status} {body}"
        );
        let anonymous = Request::builder()
            .method(method)
            .uri(&path)
            .body(Body::empty())
            .expect("req");
        let (status, _) = call(router(Arc::clone(&api.0.shared)), anonymous).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} needs the token");
    }
    for schema in [
        "Event",
        "Job",
        "DeadLetter",
        "JobDetail",
        "Stats",
        "Timeline",
        "Replayed",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
}
