//! Time limits on calls to RabbitMQ and Redis: a broker or Redis that stops
//! answering ends the run with an error naming the call (and cleanup still
//! runs), rather than hanging it.

use std::time::Duration;

use anyhow::{Result, anyhow};

/// How long one call to the broker or Redis may take.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

/// The outcome of `call`, or an error naming `what` when it takes longer than [`CALL_LIMIT`].
pub async fn within<T, E>(what: &str, call: impl Future<Output = Result<T, E>>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(anyhow!("{what}: no answer within {CALL_LIMIT:?}")),
    }
}
