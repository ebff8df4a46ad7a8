//! The Slatis webhook signature: `sha256=` + hex of HMAC-SHA256(secret, raw body).
//!
//! Invariants: verification runs on the raw bytes, never on re-serialised JSON; the tag
//! is compared in constant time (`Mac::verify_slice`); every verification computes the
//! same number of HMACs (the tenant's secrets padded with decoys, or decoys alone for an
//! unknown tenant or a malformed header), so the time taken tells neither which secret
//! matched, nor how many secrets a tenant has, nor whether the tenant exists.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header Slatis puts the signature in.
pub const HEADER: &str = "x-slatis-signature";

const PREFIX: &str = "sha256=";

/// The `x-slatis-signature` value for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// A key no tenant has: it pads a verification to its number of HMACs and never matches.
const DECOY: &[u8] = b"slatis-sync decoy secret";

/// Whether `header` (the raw `x-slatis-signature` value) is a valid signature of `body`
/// under any of `secrets`. Upper- or lower-case hex is accepted; anything malformed is
/// simply not valid.
///
/// Exactly `rounds.max(secrets.len())` HMACs are computed whatever the input: pass the
/// largest secret count of any tenant (`Config::max_signing_secrets`), and an empty
/// `secrets` for an unknown tenant.
pub fn verify<S: AsRef<[u8]>>(
    header: Option<&str>,
    secrets: &[S],
    body: &[u8],
    rounds: usize,
) -> bool {
    let tag = header.and_then(parse);
    // A malformed header is checked against a tag of the right length, so it takes the
    // same work; `tag.is_some()` below keeps it from ever verifying.
    let compared = tag.as_deref().unwrap_or(&[0; 32]);
    let mut valid = false;
    for i in 0..rounds.max(secrets.len()) {
        let (secret, real) = secrets
            .get(i)
            .map_or((DECOY, false), |s| (s.as_ref(), true));
        let mut mac = new_mac(secret);
        mac.update(body);
        valid |= mac.verify_slice(compared).is_ok() & real;
    }
    valid & tag.is_some()
}

fn parse(header: &str) -> Option<Vec<u8>> {
    let hex_part = header.trim().strip_prefix(PREFIX)?;
    if hex_part.len() != 64 {
        return None;
    }
    hex::decode(hex_part).ok()
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    #[cfg(test)]
    tests::HMACS.with(|c| c.set(c.get() + 1));
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    thread_local! {
        /// HMACs computed on this thread (counted by `new_mac` in tests).
        pub(super) static HMACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let sig = sign(b"s", b"body");
        let upper = format!("sha256={}", sig[7..].to_uppercase());
        assert!(verify(Some(&upper), &["s"], b"body", 1));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for h in ["", "sha256=", "sha256=zz", "md5=abcd", "sha256=00"] {
            assert!(!verify(Some(h), &["s"], b"body", 1), "{h}");
        }
        assert!(!verify(None, &["s"], b"body", 1));
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let sig = sign(b"new", b"x");
        assert!(verify(Some(&sig), &["old", "new"], b"x", 2));
        assert!(
            verify(Some(&sig), &["old", "new"], b"x", 5),
            "padding never hides a match"
        );
        assert!(!verify(Some(&sig), &["old"], b"x", 2));
        assert!(!verify::<&str>(Some(&sig), &[], b"x", 3));
    }

    #[test]
    fn a_decoy_never_verifies() {
        let sig = sign(DECOY, b"x");
        assert!(!verify::<&str>(Some(&sig), &[], b"x", 4), "unknown tenant");
        assert!(
            !verify(Some(&sig), &["s"], b"x", 4),
            "padding of a known one"
        );
    }

    #[test]
    fn every_verification_computes_the_same_number_of_hmacs() {
        // Timing belongs in a benchmark; the work is asserted here: known and unknown
        // tenants, one or three secrets, valid, malformed or missing headers all compute
        // the number of HMACs `rounds` says.
        let body = vec![b'a'; 64];
        let sig = sign(b"one", &body);
        let count = |secrets: &[&str], header: Option<&str>| {
            HMACS.with(|c| c.set(0));
            let _ = verify(header, secrets, &body, 3);
            HMACS.with(std::cell::Cell::get)
        };
        for (secrets, header) in [
            (&["one"][..], Some(sig.as_str())),
            (&["one", "two", "three"][..], Some(sig.as_str())),
            (&[][..], Some(sig.as_str())),
            (&["one"][..], Some("garbage")),
            (&[][..], None),
        ] {
            assert_eq!(count(secrets, header), 3, "{secrets:?} {header:?}");
        }
    }

    proptest! {
        #[test]
        fn a_signature_always_verifies(secret in proptest::collection::vec(any::<u8>(), 0..64),
                                       body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let sig = sign(&secret, &body);
            prop_assert!(verify(Some(&sig), &[&secret], &body, 1));
        }

        #[test]
        fn a_changed_body_never_verifies(secret in "[a-z0-9_]{1,32}",
                                         body in proptest::collection::vec(any::<u8>(), 1..256),
                                         idx in any::<usize>(), flip in 1u8..=255) {
            let sig = sign(secret.as_bytes(), &body);
            let mut other = body.clone();
            let i = idx % other.len();
            other[i] ^= flip;
            prop_assert!(!verify(Some(&sig), &[secret.as_bytes()], &other, 1));
        }

        #[test]
        fn a_truncated_or_altered_tag_never_verifies(body in ".{0,64}", cut in 1usize..64) {
            let sig = sign(b"k", body.as_bytes());
            prop_assert!(!verify(Some(&sig[..sig.len() - cut]), &["k"], body.as_bytes(), 1));
            let mut altered = sig.clone().into_bytes();
            let last = altered.len() - 1;
            altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
            prop_assert!(!verify(Some(std::str::from_utf8(&altered).unwrap_or_default()), &["k"], body.as_bytes(), 1));
        }
    }
}
