//! What can go wrong between the proxy and the app, classified for the status the IdP gets.

use std::time::Duration;

use crate::limit::{LimitError, ReadError};

use crate::body::{BodyTimeout, BoxError};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the application could not be reached")]
    Unavailable(#[source] BoxError),
    /// The app failed repeatedly; it is left alone for this long still.
    #[error("the application is failing; the proxy is not sending it requests for {}s", .0.as_secs_f64().ceil().max(1.0))]
    CircuitOpen(Duration),
    #[error("the application did not answer within {}s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the application broke off the exchange")]
    Broken(#[source] BoxError),
    #[error("the application did not finish its answer in time")]
    SlowBody,
    #[error("the request path cannot be sent upstream")]
    BadPath(#[source] http::uri::InvalidUri),
    /// The call did not get its turn under the tenant's, the app's or the process's limits.
    #[error(transparent)]
    Limited(#[from] LimitError),
    /// An answer the proxy must read whole is larger than it reads.
    #[error("the application's answer is larger than {} MiB, the most the proxy reads whole", .0 >> 20)]
    TooLarge(usize),
    /// The process's budget for answers read whole is taken.
    #[error("the proxy is holding {} MiB of answers already; try again shortly", .0 >> 20)]
    NoBufferRoom(usize),
}

impl From<ReadError> for UpstreamError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooLarge(max) => Self::TooLarge(max),
            ReadError::NoRoom(total) => Self::NoBufferRoom(total),
            ReadError::Body(e) => Self::reading(e),
        }
    }
}

impl UpstreamError {
    /// A fixed name per kind, for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unreachable",
            Self::CircuitOpen(_) => "circuit_open",
            Self::Timeout(_) => "timeout",
            Self::Broken(_) => "broken",
            Self::SlowBody => "slow_body",
            Self::BadPath(_) => "bad_path",
            Self::Limited(_) => "limited",
            Self::TooLarge(_) => "too_large",
            Self::NoBufferRoom(_) => "no_buffer_room",
        }
    }

    /// An error met while reading an upstream body: the deadline, or a broken exchange.
    pub fn reading(e: BoxError) -> Self {
        if e.is::<BodyTimeout>() {
            Self::SlowBody
        } else {
            Self::Broken(e)
        }
    }
}
