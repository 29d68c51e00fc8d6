//! Module being written.
