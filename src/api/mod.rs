//! The public face: [`builder()`] and [`Builder`], the [`Config`](config::Config) it fills (every
//! default, validation), the [`Guard`] and the [`Client`]. Everything below is reached through
//! here; nothing below imports this layer.

mod broadcast;
mod builder;
mod client;
mod config;
mod endpoint;
mod env;
mod guard;

pub use broadcast::{Broadcast, BroadcastReceipt};
pub use builder::{builder, Builder, Dangerous};
pub use client::Client;
pub use endpoint::{endpoint, Endpoint};
pub use env::from_env;
pub use guard::Guard;

/// For the front ends, which reach posthaste through this layer only.
#[cfg(any(feature = "log", feature = "tracing"))]
pub(crate) use crate::state::queue::Priority;
