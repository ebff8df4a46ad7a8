//! Fuzz target: the `x-slatis-signature` header against a body.
//!
//! Input: the header value, a newline, then the body. Properties: verifying never
//! panics, a header that verifies is the body's real signature, and the real signature
//! always verifies (whatever the header case), also when padded with decoys.

use slatis_core::signature;

const SECRETS: [&str; 2] = ["whsec_fuzz_old", "whsec_fuzz_new"];

/// As many HMACs as a config whose largest tenant has three secrets.
const ROUNDS: usize = 3;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (header, body) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let header = String::from_utf8_lossy(header);
        let verified = signature::verify(Some(&header), &SECRETS, body, ROUNDS);
        let real: Vec<String> = SECRETS
            .iter()
            .map(|s| signature::sign(s.as_bytes(), body))
            .collect();
        if verified {
            let given = header.trim().to_ascii_lowercase();
            assert!(real.contains(&given), "verified a header that is no signature");
        }
        for sig in &real {
            assert!(signature::verify(Some(sig), &SECRETS, body, ROUNDS));
            assert!(signature::verify(Some(&sig.to_ascii_uppercase().replacen("SHA256=", "sha256=", 1)), &SECRETS, body, ROUNDS));
            assert!(!signature::verify::<&str>(Some(sig), &[], body, ROUNDS), "an unknown tenant never verifies");
        }
    });
}
