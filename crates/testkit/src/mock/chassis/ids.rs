//! Record ids: each mock numbers its records from a counter ([`Ids`]) and shapes the
//! number as its vendor does.
//!
//! Invariant: a counter gives each number once, in increasing order; ids are never
//! reused, not even after a delete.

/// A counter of record numbers.
#[derive(Debug, Clone)]
pub struct Ids {
    next: u64,
}

impl Ids {
    /// A counter whose first number is `first`.
    pub const fn starting_at(first: u64) -> Self {
        Self { next: first }
    }

    /// The next number.
    pub fn take(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::Ids;

    #[test]
    fn numbers_are_given_once_in_order() {
        let mut ids = Ids::starting_at(101);
        let mut copy = ids.clone();
        assert_eq!((ids.take(), ids.take()), (101, 102));
        assert_eq!(copy.take(), 101, "a copy counts on its own");
    }
}
