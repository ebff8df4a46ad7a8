//! The Slatis webhook signature: `sha256=` + hex of HMAC-SHA256(secret, raw body).
//!
//! Invariants: verification runs on the raw bytes, never on re-serialised JSON; the tag
//! is compared in constant time (`Mac::verify_slice`); every configured secret is tried
//! (no early exit) so the time taken does not tell which secret matched.

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

/// Whether `header` (the raw `x-slatis-signature` value) is a valid signature of `body`
/// under any of `secrets`. Upper- or lower-case hex is accepted; anything malformed is
/// simply not valid.
pub fn verify<S: AsRef<[u8]>>(header: Option<&str>, secrets: &[S], body: &[u8]) -> bool {
    let Some(tag) = header.and_then(parse) else {
        return false;
    };
    let mut valid = false;
    for secret in secrets {
        let mut mac = new_mac(secret.as_ref());
        mac.update(body);
        valid |= mac.verify_slice(&tag).is_ok();
    }
    valid
}

/// Spends the same work as [`verify`] with one secret, for requests that have no tenant,
/// so that an unknown tenant cannot be told from a bad signature by timing.
pub fn verify_decoy(header: Option<&str>, body: &[u8]) -> bool {
    let _ = verify(header, &[b"slatis-sync decoy secret"], body);
    false
}

fn parse(header: &str) -> Option<Vec<u8>> {
    let hex_part = header.trim().strip_prefix(PREFIX)?;
    if hex_part.len() != 64 {
        return None;
    }
    hex::decode(hex_part).ok()
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upper_case_hex_is_accepted() {
        let sig = sign(b"s", b"body");
        let upper = format!("sha256={}", sig[7..].to_uppercase());
        assert!(verify(Some(&upper), &["s"], b"body"));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for h in ["", "sha256=", "sha256=zz", "md5=abcd", "sha256=00"] {
            assert!(!verify(Some(h), &["s"], b"body"), "{h}");
        }
        assert!(!verify(None, &["s"], b"body"));
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let sig = sign(b"new", b"x");
        assert!(verify(Some(&sig), &["old", "new"], b"x"));
        assert!(!verify(Some(&sig), &["old"], b"x"));
        assert!(!verify::<&str>(Some(&sig), &[], b"x"));
    }

    proptest! {
        #[test]
        fn a_signature_always_verifies(secret in proptest::collection::vec(any::<u8>(), 0..64),
                                       body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let sig = sign(&secret, &body);
            prop_assert!(verify(Some(&sig), &[&secret], &body));
        }

        #[test]
        fn a_changed_body_never_verifies(secret in "[a-z0-9_]{1,32}",
                                         body in proptest::collection::vec(any::<u8>(), 1..256),
                                         idx in any::<usize>(), flip in 1u8..=255) {
            let sig = sign(secret.as_bytes(), &body);
            let mut other = body.clone();
            let i = idx % other.len();
            other[i] ^= flip;
            prop_assert!(!verify(Some(&sig), &[secret.as_bytes()], &other));
        }

        #[test]
        fn a_truncated_or_altered_tag_never_verifies(body in ".{0,64}", cut in 1usize..64) {
            let sig = sign(b"k", body.as_bytes());
            prop_assert!(!verify(Some(&sig[..sig.len() - cut]), &["k"], body.as_bytes()));
            let mut altered = sig.clone().into_bytes();
            let last = altered.len() - 1;
            altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
            prop_assert!(!verify(Some(std::str::from_utf8(&altered).unwrap_or_default()), &["k"], body.as_bytes()));
        }
    }
}
