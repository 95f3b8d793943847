//! Connection failures in words an operator can act on.
//!
//! lapin and redis describe a failed connection in their own terms ("protocol
//! error: AMQP soft error: ACCESS-REFUSED ...", "Error occurred while creating a
//! new object: ..."). These functions say which of the usual causes it is — a
//! refused login, a virtual host that is missing or not permitted, nothing
//! listening, no answer, a dropped handshake — decided by the error's type,
//! AMQP reply code, Redis error kind or I/O error kind, never by its text. An
//! error of no known cause is passed through as it is.

use std::io;

use lapin::ErrorKind as AmqpKind;
use redis::ErrorKind as RedisKind;

/// AMQP reply codes (0-9-1, section 1.2).
const ACCESS_REFUSED: u16 = 403;
const NOT_ALLOWED: u16 = 530;

/// What a failed RabbitMQ connection means.
pub fn amqp(error: &lapin::Error) -> String {
    match error.kind() {
        AmqpKind::ProtocolError(e) if e.get_id() == ACCESS_REFUSED => {
            "RabbitMQ refused the login: check the user name and password in --amqp-url (AMQP_URL)"
                .into()
        }
        AmqpKind::ProtocolError(e) if e.get_id() == NOT_ALLOWED => {
            "RabbitMQ does not open that virtual host for this user (no such virtual host, or no \
             permission on it): check the path of --amqp-url (`/%2f` is the default vhost `/`) \
             and the user's permissions (rabbitmqctl set_permissions)"
                .into()
        }
        AmqpKind::IOError(io) => io_words(io, "RabbitMQ").unwrap_or_else(|| error.to_string()),
        _ => error.to_string(),
    }
}

/// What a failed Redis connection means.
pub fn redis(error: &redis::RedisError) -> String {
    if error.kind() == RedisKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
    {
        return "Redis refused the login: check the password in --redis-url (REDIS_URL)".into();
    }
    let kind = if error.is_connection_refusal() {
        io::ErrorKind::ConnectionRefused
    } else if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else if error.is_connection_dropped() {
        io::ErrorKind::ConnectionReset
    } else {
        return error.to_string();
    };
    io_words(&io::Error::from(kind), "Redis").unwrap_or_else(|| error.to_string())
}

/// A RabbitMQ or Redis connection that gave no answer within `waited`.
pub fn no_answer(service: &str) -> String {
    format!("no answer from that address in time: is the host reachable and is it {service}?")
}

fn io_words(error: &io::Error, service: &str) -> Option<String> {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => Some(format!(
            "nothing accepts connections at that address (connection refused): is {service} \
             running, and on that port?"
        )),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Some(no_answer(service)),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe => Some(format!(
            "the connection was dropped during the handshake: is that port really {service} \
             (not TLS, not another service)?"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "x")
    }

    #[test]
    fn io_failures_are_told_by_kind() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, "is Redis running"),
            (io::ErrorKind::TimedOut, "no answer"),
            (
                io::ErrorKind::ConnectionReset,
                "dropped during the handshake",
            ),
            (io::ErrorKind::UnexpectedEof, "dropped during the handshake"),
        ];
        for (kind, words) in cases {
            let said = io_words(&io(kind), "Redis").unwrap();
            assert!(said.contains(words), "{kind:?}: {said}");
        }
        assert!(io_words(&io(io::ErrorKind::Other), "Redis").is_none());
    }

    #[test]
    fn amqp_failures_are_told_by_kind() {
        let refused = lapin::Error::from(io(io::ErrorKind::ConnectionRefused));
        assert!(amqp(&refused).contains("is RabbitMQ running"));
    }

    #[test]
    fn redis_failures_are_told_by_kind() {
        let auth = redis::RedisError::from((RedisKind::AuthenticationFailed, "auth"));
        assert!(redis(&auth).contains("refused the login"));
        let refused = redis::RedisError::from(io(io::ErrorKind::ConnectionRefused));
        assert!(redis(&refused).contains("is Redis running"));
    }
}
