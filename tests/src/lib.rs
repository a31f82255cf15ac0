//! Gantry's cross-crate end-to-end tests live in `tests/tests/`: they walk the whole path
//! a user takes, train → export → generate → quantize → render.
