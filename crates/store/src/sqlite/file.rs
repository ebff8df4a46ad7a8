//! The database file on disk: which file it really is, who may read it, who owns it.
//!
//! Invariants:
//! - the path is resolved (symlinks, `.`, `..`, relative paths) before it is locked or
//!   opened, so one file has one lock file, `<resolved path>.lock`, however the config
//!   names it: a second owner through a symlink is refused like any other;
//! - the database, its `-wal` and `-shm` files and the lock file are readable and writable
//!   by their owner only (0600; bookings hold attendee names and emails): the database is
//!   created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` the database's
//!   mode), and a file found with a looser mode is tightened, with a log line;
//! - an owner holds an exclusive lock on the lock file for its life; the OS releases it
//!   when the process dies.

use crate::{Result, StoreError};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The mode of every file of the database.
#[cfg(unix)]
const MODE: u32 = 0o600;

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `path` with `suffix` appended to its file name (`-wal`, `.lock`, …).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens (creating it if missing) `path` for writing, with the private mode.
fn create(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, MODE);
    options.open(path).map_err(|e| io(path, e))
}

/// Makes `path`, if it exists, private, and says so when it was not.
fn tighten(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(path, e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & !MODE != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))
                .map_err(|e| io(path, e))?;
            tracing::warn!(
                file = %path.display(),
                was = format!("{mode:o}"),
                "made the database file readable by its owner only (0600)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates the database file if it is missing (private), resolves its real path and makes
/// it and its `-wal` and `-shm` files private. Returns the real path, which is what must
/// be locked and opened.
///
/// # Errors
/// [`StoreError::Io`] when the file cannot be created, resolved or made private.
pub(super) fn prepare(path: &str) -> Result<PathBuf> {
    let given = Path::new(path);
    drop(create(given)?);
    let real = std::fs::canonicalize(given).map_err(|e| io(given, e))?;
    for file in [real.clone(), beside(&real, "-wal"), beside(&real, "-shm")] {
        tighten(&file)?;
    }
    Ok(real)
}

/// Takes the owner's lock of the database at `real` (a path from [`prepare`]).
///
/// # Errors
/// [`StoreError::Locked`] when another process holds it; [`StoreError::Io`] otherwise.
pub(super) fn lock(real: &Path) -> Result<File> {
    let lock_path = beside(real, ".lock");
    let file = create(&lock_path)?;
    tighten(&lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: real.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(io(&lock_path, source)),
    }
}
