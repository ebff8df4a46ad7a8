//! (tests come with the mock)
