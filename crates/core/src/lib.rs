//! The heart of slatis-sync, shared by every other crate: the Slatis envelope and its
//! signature, the configuration (parse, `${VAR}`, validate), Handlebars templates,
//! routing, the connector plug-in API (trait, registry, transport, error classes), and
//! saturating time arithmetic for waits that come from outside, URL paths built from
//! booking data.
//!
//! This crate depends on no other crate of the workspace. Connector crates depend on it
//! alone: what they need from storage (the record map) reaches them through
//! [`connector::RecordMap`], which the runtime implements and passes in.

pub mod config;
pub mod connector;
pub mod delivery;
pub mod envelope;
pub mod job;
pub mod outcome;
pub mod redact;
pub mod signature;
pub mod step;
pub mod template;
pub mod time;
pub mod url_path;

pub use config::{Config, ConfigError};
pub use connector::{Connector, ConnectorFactory};
pub use delivery::DeliveryError;
pub use envelope::Envelope;
