//! Errors: [`Error`] for configuration and start-up, [`SendError`] for `send`.
//!
//! Owns the error types and their hand-written `Display`. Nothing here may print a secret:
//! header values, tokens and passwords never reach these messages.

use std::fmt;

use crate::event::Event;

/// Why [`Builder::start`](crate::Builder::start) refused a configuration.
///
/// Every variant names the option (or environment variable) it came from and the offending
/// value, with secrets redacted. Nothing fails later for a reason that was knowable here.
///
/// URLs are redacted without being parsed, so a malformed one is as safe as a well-formed
/// one: the userinfo ends at the last `@`, and before it everything from the first `:` on is
/// hidden (`htp:/u:pw@h` shows as `htp:***@h`); after a well-formed `scheme://` the user name
/// is shown (`http://u:***@h`); a userinfo without `:` is a token, hidden whole (`***@h`). An
/// `@` in a path or query is taken for the end of a userinfo too: over-redacting beats
/// leaking. Reasons never quote a password.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint URL could not be parsed or is not `http://` / `https://`.
    InvalidUrl {
        /// The URL as given, its userinfo redacted even when the URL is malformed:
        /// `user:***@`, or `***@` for a user name alone (see [`Error`]).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value is not valid HTTP (for example it contains CR or LF).
    InvalidHeader {
        /// The header name as given (the value is never echoed). `Display` escapes control
        /// characters in it.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A numeric or duration option is out of range.
    InvalidOption {
        /// The builder method or environment variable, e.g. `"workers"`.
        option: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A proxy URL is invalid.
    InvalidProxy {
        /// Where it came from: `"Builder::proxy"` or the environment variable's name.
        source: String,
        /// The URL as given, redacted like [`Error::InvalidUrl`]'s.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key could not be loaded.
    Certificate {
        /// The file (or `"<bytes>"` for in-memory PEM).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system refused to start a worker thread.
    Spawn(std::io::Error),
    /// `Logger::install` (feature `log`) found another logger already set: `log` allows one
    /// per process, set once.
    LoggerAlreadySet,
    /// An option of a named endpoint ([`Builder::endpoint`](crate::Builder::endpoint)) is
    /// invalid.
    Endpoint {
        /// The endpoint's name.
        name: String,
        /// What is wrong with it.
        error: Box<Error>,
    },
    /// An option of a poller ([`Builder::poll`](crate::Builder::poll)) is invalid.
    Poll {
        /// The poller's name.
        name: String,
        /// What is wrong with it.
        error: Box<Error>,
    },
    /// The spill directory ([`Builder::spill_dir`](crate::Builder::spill_dir)) can't be used.
    Spill {
        /// The directory as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid endpoint URL {url:?}: {reason}"),
            Error::InvalidHeader { name, reason } => write!(f, "invalid header {name:?}: {reason}"),
            Error::InvalidOption { option, reason } => write!(f, "invalid option `{option}`: {reason}"),
            Error::InvalidProxy { source, url, reason } => {
                write!(f, "invalid proxy {url:?} (from {source}): {reason}")
            }
            Error::Certificate { origin, reason } => write!(f, "certificate {origin}: {reason}"),
            Error::Spawn(e) => write!(f, "could not start a worker thread: {e}"),
            Error::LoggerAlreadySet => {
                f.write_str("another logger is already installed (the `log` crate allows one)")
            }
            Error::Spill { path, reason } => write!(f, "spill directory {path:?}: {reason}"),
            Error::Endpoint { name, error } => write!(f, "endpoint {name:?}: {error}"),
            Error::Poll { name, error } => write!(f, "poller {name:?}: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(e),
            Error::Endpoint { error, .. } | Error::Poll { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

/// Why [`Client::send`](crate::Client::send) did not take an event. The event is handed back.
///
/// `Debug` and `Display` never print the event itself (it may hold user data).
#[non_exhaustive]
pub enum SendError {
    /// The queue is full (by count or by bytes) and the overflow policy refused the event.
    /// The event was counted as `dropped` and its outcome is [`Outcome::Dropped`](crate::Outcome).
    Full(Event),
    /// Shutdown has begun; the event was not accepted and is not counted anywhere.
    Closed(Event),
    /// [`Client::send_serialize`](crate::Client::send_serialize) could not serialize the value.
    Serialize(serde_json::Error),
    /// [`Client::send_to`](crate::Client::send_to) (or a broadcast) named an endpoint that does
    /// not exist; the event was not accepted and is not counted anywhere.
    UnknownEndpoint(Event),
}

impl SendError {
    /// Takes the event back, if the error carries one.
    ///
    /// ```
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// let client = guard.client();
    /// drop(guard.shutdown());
    /// let err = client.send(serde_json::json!({"n": 1})).unwrap_err();
    /// let event = err.into_event().unwrap();
    /// assert_eq!(event.as_value().unwrap()["n"], 1);
    /// ```
    pub fn into_event(self) -> Option<Event> {
        match self {
            SendError::Full(e) | SendError::Closed(e) | SendError::UnknownEndpoint(e) => Some(e),
            SendError::Serialize(_) => None,
        }
    }

    /// True for [`SendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, SendError::Full(_))
    }

    /// True for [`SendError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Serialize(e) => f.debug_tuple("Serialize").field(e).finish(),
            SendError::UnknownEndpoint(_) => f.write_str("UnknownEndpoint(..)"),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("posthaste queue is full; event dropped"),
            SendError::Closed(_) => f.write_str("posthaste is shutting down; event not accepted"),
            SendError::Serialize(e) => write!(f, "event could not be serialized: {e}"),
            SendError::UnknownEndpoint(_) => {
                f.write_str("no posthaste endpoint has that name; event not accepted")
            }
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_sizes_stay_small() {
        // Errors travel by value through `Result`; keep them a few words wide.
        assert!(std::mem::size_of::<SendError>() <= 40);
        assert!(std::mem::size_of::<Error>() <= 80);
    }
}
