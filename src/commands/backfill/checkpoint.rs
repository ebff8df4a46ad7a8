//! Where an interrupted backfill resumes: after each page fed, the cursor of the next page
//! (and the counts so far) in a small JSON file beside the config,
//! `<config stem>.backfill/<tenant>_<since>_<until>.json`, one per tenant and range as
//! given (`--until` absent is `now`, resolved once by the first run and kept here so the
//! re-run asks Slatis for the same range).
//!
//! Chosen over the store: it is the state of one operator's command, not of the service,
//! and it needs no schema. Invariants: written whole (temporary file, then rename), so a
//! kill leaves the old or the new one, never half; removed when the range is done;
//! correctness never depends on it (the dedupe key does): a lost or unwritable checkpoint
//! only means pages are read again.

use super::Counts;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The state after the last page fed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The end of the range, RFC 3339 (resolved when `--until` was not given).
    pub until: String,
    /// Pages fed so far.
    pub pages: u32,
    /// The cursor of the next page.
    pub cursor: String,
    /// What was done so far.
    pub counts: Counts,
}

/// The checkpoint file of one tenant and range.
pub struct Slot {
    path: PathBuf,
}

/// `value` as a file name part: letters, digits, `-` and `_` kept, anything else `-`.
fn part(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl Slot {
    /// The slot of `tenant`'s backfill of `since`..`until` (as given; `None` is `now`)
    /// for the config at `config`.
    pub fn new(config: &Path, tenant: &str, since: &str, until: Option<&str>) -> Self {
        let name = format!(
            "{}_{}_{}.json",
            part(tenant),
            part(since),
            part(until.unwrap_or("now"))
        );
        Self {
            path: crate::commands::beside(config, "backfill").join(name),
        }
    }

    /// The file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint kept, if any.
    ///
    /// # Errors
    /// When the file is there but cannot be read or is not a checkpoint (named, with
    /// what to do).
    pub fn load(&self) -> anyhow::Result<Option<Checkpoint>> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot read checkpoint {}: {e}", self.path.display()),
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "checkpoint {} is not readable ({e}): delete it to start the range over (nothing is fed twice)",
                self.path.display()
            )
        })
    }

    /// Keeps `checkpoint`, replacing the one before.
    ///
    /// # Errors
    /// When the directory or file cannot be written.
    pub fn save(&self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(checkpoint)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Forgets the checkpoint (the range is done).
    ///
    /// # Errors
    /// When it exists and cannot be removed.
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_kept_per_tenant_and_range_and_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prod.yaml");
        let slot = Slot::new(&config, "acme", "2026-05-01T00:00:00+02:00", None);
        assert_eq!(
            slot.path(),
            dir.path()
                .join("prod.backfill/acme_2026-05-01T00-00-00-02-00_now.json")
        );
        assert_eq!(slot.load().expect("none"), None);
        let kept = Checkpoint {
            until: "2026-06-01T00:00:00.000Z".into(),
            pages: 2,
            cursor: "abc".into(),
            counts: Counts::default(),
        };
        slot.save(&kept).expect("save");
        assert_eq!(slot.load().expect("load"), Some(kept));
        let other = Slot::new(&config, "acme", "2026-05-01", Some("2026-05-02"));
        assert_eq!(other.load().expect("other range"), None);
        slot.clear().expect("clear");
        slot.clear().expect("clear twice");
        assert_eq!(slot.load().expect("cleared"), None);
        std::fs::write(slot.path(), "{").expect("corrupt");
        assert!(
            slot.load()
                .expect_err("corrupt")
                .to_string()
                .contains("delete it")
        );
    }
}
