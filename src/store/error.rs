//! What a Redis failure means for the event, decided by the error's kind and
//! code, never by its text:
//!
//! - **passing** ([`StoreError::Unavailable`], [`StoreError::Pool`]): I/O,
//!   timeouts, a dropped or refused connection, and the server codes that say
//!   "not now": `OOM` (out of memory, also inside a script), `READONLY` (a
//!   replica during failover), `LOADING`, `BUSY`, `MASTERDOWN`, `NOSCRIPT`,
//!   `TRYAGAIN`, `CLUSTERDOWN`, `MOVED`, `ASK`, `NOREPLICAS`. Retried with
//!   backoff for as long as it takes; never dead-lettered.
//! - **corrupt** ([`StoreError::Corrupt`]): a script's own `CORRUPT` error
//!   (raised only where it found data it cannot read) or a reply that does
//!   not decode. Retrying cannot help: the event goes to `P.dead`.
//! - **refused** ([`StoreError::Refused`]): any other server error (a script
//!   bug, a permission, `WRONGTYPE`). Not known to pass, not known to be the
//!   data's fault: retried with backoff, and the worker bounds the retries.

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The code a script raises (`redis.error_reply('CORRUPT ...')`) when the
/// state it reads is not what the worker wrote.
pub const CORRUPT: &str = "CORRUPT";

/// Server error codes of a failure that passes by itself.
const PASSING_CODES: [&str; 11] = [
    "OOM",
    "READONLY",
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "NOSCRIPT",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MOVED",
    "ASK",
    "NOREPLICAS",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis is unreachable, out of memory, read-only, loading or busy: retry later.
    #[error("redis unavailable: {0}")]
    Unavailable(#[source] RedisError),
    /// No connection from the pool in time, or none could be made: passing
    /// unless the server refused the connection (a bad password).
    #[error("redis connection pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// Redis refused the operation for a reason not known to pass: retried, boundedly.
    #[error("redis refused the operation: {0}")]
    Refused(#[source] RedisError),
    /// Redis holds data this worker cannot read: a bug or foreign data.
    #[error("redis state is not as expected: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Worth retrying at all: everything but corrupt data.
    pub fn is_transient(&self) -> bool {
        !matches!(self, StoreError::Corrupt(_))
    }

    /// The Redis error behind this one, if there is one (for telling causes apart).
    pub fn redis_error(&self) -> Option<&RedisError> {
        use deadpool_redis::PoolError;
        match self {
            StoreError::Unavailable(e) | StoreError::Refused(e) => Some(e),
            StoreError::Pool(PoolError::Backend(e)) => Some(e),
            StoreError::Pool(_) | StoreError::Corrupt(_) => None,
        }
    }

    /// A passing failure: retried for as long as it lasts, never dead-lettered.
    pub fn is_passing(&self) -> bool {
        use deadpool_redis::PoolError;
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Pool(PoolError::Backend(e)) => is_passing(e),
            StoreError::Pool(PoolError::Timeout(_) | PoolError::Closed) => true,
            StoreError::Pool(_) | StoreError::Refused(_) | StoreError::Corrupt(_) => false,
        }
    }
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        if is_passing(&e) {
            StoreError::Unavailable(e)
        } else if codes(&e).iter().any(|code| code == CORRUPT)
            || e.kind() == ErrorKind::UnexpectedReturnType
        {
            StoreError::Corrupt(e.to_string())
        } else {
            StoreError::Refused(e)
        }
    }
}

/// The server codes an error carries: its own, or those of the commands of a
/// failed pipeline or transaction.
fn codes(e: &RedisError) -> Vec<String> {
    let mut codes: Vec<String> = e.code().map(str::to_owned).into_iter().collect();
    if let Some(errors) = e.clone().into_server_errors() {
        codes.extend(errors.iter().map(|(_, error)| error.code().to_owned()));
    }
    codes
}

fn is_passing(e: &RedisError) -> bool {
    let by_kind = match e.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::ClusterConnectionNotFound
        | ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::NoScript
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        ),
        _ => false,
    };
    by_kind
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || codes(e)
            .iter()
            .any(|code| PASSING_CODES.contains(&code.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a server reply (RESP bytes) becomes.
    fn server(reply: &str) -> RedisError {
        let value = redis::parse_redis_value(reply.as_bytes()).unwrap();
        value.extract_error().unwrap_err()
    }

    fn class(e: StoreError) -> &'static str {
        match e {
            StoreError::Unavailable(_) | StoreError::Pool(_) => "passing",
            StoreError::Refused(_) => "refused",
            StoreError::Corrupt(_) => "corrupt",
        }
    }

    #[test]
    fn server_errors_are_classified_by_code() {
        let table = [
            // What Redis 7 answers when a script's write hits maxmemory.
            (
                "-OOM command not allowed when used memory > 'maxmemory'. script: af87a6f4, on @user_script:1.\r\n",
                "passing",
            ),
            (
                "-READONLY You can't write against a read only replica.\r\n",
                "passing",
            ),
            (
                "-LOADING Redis is loading the dataset in memory\r\n",
                "passing",
            ),
            ("-BUSY Redis is busy running a script.\r\n", "passing"),
            ("-MASTERDOWN Link with MASTER is down\r\n", "passing"),
            ("-NOSCRIPT No matching script.\r\n", "passing"),
            (
                "-TRYAGAIN Multiple keys request during rehashing\r\n",
                "passing",
            ),
            ("-CLUSTERDOWN The cluster is down\r\n", "passing"),
            (
                "-NOREPLICAS Not enough good replicas to write.\r\n",
                "passing",
            ),
            (
                "-CORRUPT chat P:{a}:chat:x is not a JSON object\r\n",
                "corrupt",
            ),
            // A script error that merely mentions a script is not corrupt data.
            (
                "-ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: 1f2e, on @user_script:1.\r\n",
                "refused",
            ),
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                "refused",
            ),
            (
                "-NOPERM this user has no permissions to run the 'evalsha' command\r\n",
                "refused",
            ),
            // Text is not what decides: an OOM-looking message under another code.
            ("-ERR OOM script CORRUPT Lua\r\n", "refused"),
        ];
        for (reply, want) in table {
            assert_eq!(class(server(reply).into()), want, "{reply:?}");
        }
    }

    #[test]
    fn client_side_errors_are_classified_by_kind() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "x"));
        let table = [
            (io(std::io::ErrorKind::TimedOut), "passing"),
            (io(std::io::ErrorKind::ConnectionReset), "passing"),
            (io(std::io::ErrorKind::ConnectionRefused), "passing"),
            (io(std::io::ErrorKind::BrokenPipe), "passing"),
            (io(std::io::ErrorKind::UnexpectedEof), "passing"),
            (
                RedisError::from((ErrorKind::UnexpectedReturnType, "not a string")),
                "corrupt",
            ),
            (
                RedisError::from((ErrorKind::AuthenticationFailed, "bad password")),
                "refused",
            ),
        ];
        for (error, want) in table {
            let shown = error.to_string();
            assert_eq!(class(error.into()), want, "{shown}");
        }
    }
}
