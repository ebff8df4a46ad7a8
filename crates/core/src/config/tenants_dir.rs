//! `tenants_dir:` — tenants kept one YAML file each (`DIR/acme.yaml` holds what
//! `tenants: { acme: … }` would), for operators with hundreds or thousands of them.
//!
//! Invariants:
//! - a file's name (without `.yaml`/`.yml`) is its tenant's name; its content is loaded
//!   and checked exactly as the same tenant under `tenants:` (the two may be mixed, a name
//!   in both is an error);
//! - every problem in a tenant from a file names that file and the line in it;
//! - `DIR` is relative to the config file (to the working directory for a config given as
//!   text); files whose names do not end in `.yaml`/`.yml` are ignored;
//! - on a reload (the main file unchanged), a file whose [`Stamp`] is the one it had at the
//!   last load is not read: its tenant is kept from the running config.

use super::yaml::{self, Lines};
use super::{Config, ConfigIssue, Tenant};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// What tells a file changed without reading it: its size, modification time and inode
/// (an editor that writes a new file and renames it over the old one changes the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(file: &Path) -> Option<Self> {
        let meta = std::fs::metadata(file).ok()?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        })
    }
}

/// The tenants that came from files: which file each came from (its lines are found again
/// only when an error in it is reported) and its stamp, and the tenants kept whole from
/// the previous generation.
#[derive(Default)]
pub(super) struct FromFiles {
    files: BTreeMap<String, (PathBuf, Option<Stamp>)>,
    /// Tenants whose file is unchanged since `previous` was loaded.
    pub(super) kept: BTreeMap<String, Arc<Tenant>>,
}

/// The issue at `path`, in `file`.
fn issue_in(file: &Path, path: String, line: Option<u64>, message: String) -> ConfigIssue {
    ConfigIssue {
        path,
        line,
        message,
        file: Some(file.to_owned()),
    }
}

/// Takes `tenants_dir` out of `root` and adds the tenant of each of its files to `root`'s
/// `tenants` — or, for a file unchanged since `previous` was loaded, keeps its tenant.
pub(super) fn take(
    root: &mut Value,
    base: Option<&Path>,
    issues: &mut Vec<ConfigIssue>,
    previous: Option<&Config>,
) -> FromFiles {
    let mut from = FromFiles::default();
    let Value::Object(root) = root else {
        return from;
    };
    let dir = match root.remove("tenants_dir") {
        None | Some(Value::Null) => return from,
        Some(Value::String(dir)) => dir,
        Some(_) => {
            issues.push(ConfigIssue::new(
                "tenants_dir",
                "must be the path of a directory",
            ));
            return from;
        }
    };
    let dir = base.map_or_else(|| PathBuf::from(&dir), |b| b.join(&dir));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            issues.push(ConfigIssue::new(
                "tenants_dir",
                format!("cannot read the directory {}: {e}", dir.display()),
            ));
            return from;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let tenants = root.entry("tenants").or_insert(Value::Null);
    if tenants.is_null() {
        *tenants = Value::Object(Map::new());
    }
    // `tenants:` that is not a mapping is reported by the loader; files have nowhere to go
    let Value::Object(tenants) = tenants else {
        return from;
    };
    let mut to_read = Vec::new();
    for file in files {
        let Some(name) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        if tenants.contains_key(&name) {
            issues.push(issue_in(
                &file,
                yaml::join("tenants", &name),
                None,
                format!("tenant `{name}` is also under `tenants:` in the config file; keep one"),
            ));
            continue;
        }
        let stamp = Stamp::of(&file);
        let unchanged = previous.and_then(|p| {
            let (_, was) = p.origin.files.get(&name)?;
            let tenant = p.tenants.get(&name)?;
            (stamp.is_some() && stamp == *was).then(|| Arc::clone(tenant))
        });
        if let Some(tenant) = unchanged {
            from.kept.insert(name.clone(), tenant);
        } else {
            to_read.push((name.clone(), file.clone()));
        }
        from.files.insert(name, (file, stamp));
    }
    for ((name, file), parsed) in to_read.iter().zip(read_all(&to_read)) {
        match parsed {
            Ok(value) => {
                tenants.insert(name.clone(), value);
            }
            Err((line, message)) => {
                issues.push(issue_in(file, yaml::join("tenants", name), line, message));
            }
        }
    }
    from
}

/// A file's tenant as JSON, or the line and message of why it is not one.
type Read = Result<Value, (Option<u64>, String)>;

/// Reads and parses each file, on every core (files are independent; parsing is most of
/// the time a large directory takes), in the order given.
fn read_all(files: &[(String, PathBuf)]) -> Vec<Read> {
    let read = |file: &Path| -> Read {
        let src = std::fs::read_to_string(file)
            .map_err(|e| (None, format!("cannot read the file: {e}")))?;
        yaml::parse(&src)
            .map(yaml::Node::into_json)
            .map_err(|e| (e.line, format!("not valid YAML: {}", e.message)))
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || files.len() < 64 {
        return files.iter().map(|(_, f)| read(f)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(_, f)| read(f)).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| {
                p.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

impl FromFiles {
    /// Each file's stamp as it was read, for the next reload.
    pub(super) fn into_stamps(self) -> BTreeMap<String, (PathBuf, Option<Stamp>)> {
        self.files
    }

    /// Points `issue` at the file and line of its tenant, when that tenant came from a file.
    pub(super) fn place(&self, issue: &mut ConfigIssue) {
        let Some(rest) = issue.path.strip_prefix("tenants.") else {
            return;
        };
        let name = rest.split(['.', '[']).next().unwrap_or(rest);
        if let Some((file, _)) = self.files.get(name) {
            let src = std::fs::read_to_string(file).unwrap_or_default();
            issue.file = Some(file.clone());
            issue.line = Lines::of_source(&src, &yaml::join("tenants", name)).of(&issue.path);
        }
    }
}
