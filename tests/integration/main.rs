//! The project's one integration test binary: each module below is one area.

mod simulator;
