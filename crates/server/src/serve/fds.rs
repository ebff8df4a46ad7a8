//! The open-file budget: how many connections the process can hold.
//!
//! Invariant: the connections the listeners may hold, plus a reserve for everything else
//! the process opens (the store's files, outbound CRM connections, the admin listener),
//! fit under the soft `RLIMIT_NOFILE`, which is first raised to the hard limit.

/// Files the process keeps besides connections: stdio, the listeners, the store's database,
/// WAL, shared-memory and lock files, the runtime's own descriptors, DNS look-ups.
const BASE_RESERVE: usize = 64;

/// Never fewer connections than this, whatever the limit says: with a limit that small,
/// accept errors are backed off and the eviction of idle connections still applies.
const MIN_CONNECTIONS: usize = 8;

/// Raises the soft open-file limit to the hard limit; returns the soft limit now in force
/// (`None` where it cannot be read).
pub(super) fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit (RLIMIT_NOFILE)");
            None
        }
    }
}

/// The connections the ingress may hold: `wanted`, or less if the open-file limit
/// `nofile` leaves less room once `others` descriptors (outbound connections, the admin
/// listener's connections, refusals in progress) and the base reserve are set aside.
pub(super) fn connection_budget(wanted: usize, nofile: Option<u64>, others: usize) -> usize {
    let Some(nofile) = nofile else {
        return wanted;
    };
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let room = nofile
        .saturating_sub(BASE_RESERVE)
        .saturating_sub(others)
        .max(MIN_CONNECTIONS);
    wanted.min(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_under_the_limit() {
        assert_eq!(connection_budget(1024, Some(1_048_576), 100), 1024);
        assert_eq!(connection_budget(1024, Some(1024), 100), 1024 - 64 - 100);
        assert_eq!(connection_budget(1024, Some(64), 100), MIN_CONNECTIONS);
        assert_eq!(connection_budget(1024, Some(u64::MAX), 100), 1024);
        assert_eq!(connection_budget(50, None, 100), 50);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_open_file_limit().expect("readable on Linux");
        let (now, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!((soft, now), (hard, hard));
    }
}
