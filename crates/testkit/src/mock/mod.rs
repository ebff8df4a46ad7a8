//! Mock destinations that keep state and answer like the real thing, each on one chassis
//! ([`Mock`]: server, request log, fault queue, auth, rate windows): the generic http
//! destination ([`MockHttp`]), the three CRMs ([`MockHubSpot`], [`MockPipedrive`],
//! [`MockSalesforce`]), each as strict as its real API, and the Slatis API itself
//! ([`MockSlatis`]: webhook management, bookings, and signed deliveries to our ingress).
//!
//! Every CRM mock is organised the same way: `mod` (its options, records and the public
//! calls tests make), `auth` (who may call, its token endpoint), `limits` (its rate and
//! usage rules), `answers` (its refusal shapes), `schema` and `values` (what its API
//! accepts), `model` (its records), `routes` (its URL surface) and `search` (its query
//! language), and at most one module of its own (HubSpot's `associations`, Pipedrive's
//! `refusal`, Salesforce's record-level `rules`).

mod chassis;
mod http;
mod hubspot;
mod pipedrive;
mod salesforce;
mod slatis;

pub use chassis::Mock;
pub use chassis::fault::Fault;
pub use chassis::log::Request;
pub use http::{MockHttp, Received};
pub use hubspot::{HubSpotOptions, HubSpotRecord, HubSpotRequest, MockHubSpot};
pub use pipedrive::{
    MockPipedrive, PipedriveOptions, PipedriveRecord, PipedriveRefusal, PipedriveRequest,
};
pub use salesforce::{MockSalesforce, SalesforceOptions, SalesforceRecord, SalesforceRequest};
pub use slatis::{
    EVENTS as SLATIS_EVENTS, MockSlatis, SCOPES as SLATIS_SCOPES, SLATIS_TEST_KEY, Slatis,
    SlatisAttempt, SlatisDelivery, SlatisOptions, SlatisRefusal, SlatisRequest, SlatisWebhook,
};
