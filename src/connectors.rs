//! The one place that links each connector crate, behind its cargo feature.
//!
//! A crate that is only listed in Cargo.toml is not linked, and its `inventory`
//! registration silently vanishes; `extern crate` forces the link. The test below checks
//! that what is registered is exactly what the features enabled.

#[cfg(feature = "http")]
#[allow(unused_extern_crates)]
extern crate slatis_connector_http;
#[cfg(feature = "hubspot")]
#[allow(unused_extern_crates)]
extern crate slatis_connector_hubspot;
#[cfg(feature = "pipedrive")]
#[allow(unused_extern_crates)]
extern crate slatis_connector_pipedrive;
#[cfg(feature = "salesforce")]
#[allow(unused_extern_crates)]
extern crate slatis_connector_salesforce;

#[cfg(test)]
mod tests {
    /// The connector types the enabled features promise, sorted.
    fn enabled() -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if cfg!(feature = "http") {
            kinds.push("http");
        }
        if cfg!(feature = "hubspot") {
            kinds.push("hubspot");
        }
        if cfg!(feature = "pipedrive") {
            kinds.push("pipedrive");
        }
        if cfg!(feature = "salesforce") {
            kinds.push("salesforce");
        }
        kinds.sort_unstable();
        kinds
    }

    #[test]
    fn every_enabled_connector_is_registered() {
        assert_eq!(slatis_core::connector::registered(), enabled());
    }
}
