//! Crate being written.
