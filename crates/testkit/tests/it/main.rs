//! Tests of testkit itself, driven through HTTP like its users do.

mod faults;
mod hubspot;
mod pipedrive;
mod salesforce;
mod slatis;
