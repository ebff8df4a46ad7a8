//! The client against the stateful Slatis mock.
