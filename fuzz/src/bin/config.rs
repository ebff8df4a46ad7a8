//! Fuzz target: the config loader (YAML, `${VAR}` substitution, every section, every
//! connector's factory, every template).
//!
//! Properties: loading never panics, and an error always names at least one issue.

#[allow(unused_extern_crates)]
extern crate slatis_connector_http;
#[allow(unused_extern_crates)]
extern crate slatis_connector_hubspot;
#[allow(unused_extern_crates)]
extern crate slatis_connector_pipedrive;
#[allow(unused_extern_crates)]
extern crate slatis_connector_salesforce;

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("whsec_fuzz_env_secret".to_owned()),
        "EMPTY" => Some(String::new()),
        "URL" => Some("http://127.0.0.1:9/api?token=fuzz".to_owned()),
        "NUM" => Some("42".to_owned()),
        _ => None,
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(e) = slatis_core::config::load_str(text, &env) {
            assert!(!e.issues.is_empty(), "an error with no issue");
            let _ = e.to_string();
        }
    });
}
