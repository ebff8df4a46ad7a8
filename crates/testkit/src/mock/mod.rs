//! Mock destinations that keep state and answer like the real thing.

mod fault;
mod http;
mod hubspot;
mod pipedrive;
mod reply;
mod salesforce;
mod wire;

pub use fault::Fault;
pub use http::{MockHttp, Received};
pub use hubspot::{HubSpotOptions, HubSpotRecord, HubSpotRequest, MockHubSpot};
pub use pipedrive::{
    MockPipedrive, PipedriveOptions, PipedriveRecord, PipedriveRefusal, PipedriveRequest,
};
pub use salesforce::{MockSalesforce, SalesforceOptions, SalesforceRecord, SalesforceRequest};
