//! State engine (work in progress).
