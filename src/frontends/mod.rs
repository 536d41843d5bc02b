//! The logging front ends: `log` records and `tracing` events shipped as JSON events. They sit
//! on the public API as a user would (`api::Client` and the bottom: the event type, errors,
//! the thread marker and timestamps in `util`); nothing below imports them.
//!
//! `shape.rs` owns the event shape and the rules both share (what is never shipped, levels by
//! target, static fields, name collisions); `log.rs` and `tracing.rs` adapt their crate's
//! records to it.

#[cfg(feature = "log")]
pub(crate) mod log;
mod shape;
#[cfg(feature = "tracing")]
pub(crate) mod tracing;
