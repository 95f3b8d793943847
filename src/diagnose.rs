//! Connection failures in words an operator can act on.
//!
//! lapin and redis describe a failed connection in their own terms ("protocol
//! error: AMQP soft error: ACCESS-REFUSED ...", "Error occurred while creating a
//! new object: ..."). These functions say which of the usual causes it is: a
//! refused login, a missing virtual host, nothing listening, an unknown host, or
//! a host that does not answer. They work on the error's text so that the
//! worker's start-up errors and the operator commands explain failures the same
//! way; an unrecognised error is passed through as it is.

/// What a failed RabbitMQ connection means, for `url` (already redacted).
pub fn amqp(reason: &str) -> String {
    let lower = reason.to_lowercase();
    if lower.contains("access_refused") || lower.contains("access-refused") {
        return "RabbitMQ refused the login: check the user name and password in --amqp-url (AMQP_URL)"
            .into();
    }
    if lower.contains("vhost") && lower.contains("not found") {
        return "RabbitMQ has no such virtual host: check the path of --amqp-url (`/%2f` is the default vhost `/`)"
            .into();
    }
    if lower.contains("not_allowed") || lower.contains("not-allowed") {
        return "RabbitMQ does not let this user use the virtual host: check the user's permissions (rabbitmqctl set_permissions)"
            .into();
    }
    common(&lower, "RabbitMQ").unwrap_or_else(|| reason.to_owned())
}

/// What a failed Redis connection means.
pub fn redis(reason: &str) -> String {
    let lower = reason.to_lowercase();
    if lower.contains("authenticationfailed")
        || lower.contains("wrongpass")
        || lower.contains("noauth")
        || lower.contains("password authentication failed")
        || lower.contains("invalid username-password")
    {
        return "Redis refused the login: check the password in --redis-url (REDIS_URL)".into();
    }
    if let Some(words) = common(&lower, "Redis") {
        return words;
    }
    // Strip the connection pool's wording, keep the cause.
    reason
        .trim_start_matches("redis unavailable: ")
        .replace("Error occurred while creating a new object: ", "")
}

fn common(lower: &str, service: &str) -> Option<String> {
    if lower.contains("connection refused") {
        return Some(format!(
            "nothing accepts connections at that address (connection refused): is {service} running, and on that port?"
        ));
    }
    if lower.contains("lookup address") || lower.contains("name or service not known") {
        return Some("the host name cannot be resolved: check the host in the URL".into());
    }
    if lower.contains("timed out") || lower.contains("timeout") || lower.contains("no answer") {
        return Some(format!(
            "no answer from that address in time: is the host reachable and is it {service}?"
        ));
    }
    if lower.contains("reset by peer") || lower.contains("unexpected end") || lower.contains("eof")
    {
        return Some(format!(
            "the connection was dropped during the handshake: is that port really {service} (not TLS, not another service)?"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_which_cause_it_is() {
        assert!(amqp("protocol error: AMQP soft error: ACCESS-REFUSED: ACCESS_REFUSED - Login was refused").contains("refused the login"));
        assert!(
            amqp("protocol error: AMQP hard error: NOT-ALLOWED: NOT_ALLOWED - vhost x not found")
                .contains("no such virtual host")
        );
        assert!(
            amqp("IO error: Connection refused (os error 111)").contains("is RabbitMQ running")
        );
        assert!(
            amqp("IO error: failed to lookup address information: Name or service not known")
                .contains("cannot be resolved")
        );
        assert!(redis("redis unavailable: Error occurred while creating a new object: Password authentication failed - AuthenticationFailed").contains("refused the login"));
        assert!(redis("redis unavailable: Error occurred while creating a new object: Connection refused (os error 111)").contains("is Redis running"));
        assert_eq!(
            redis("redis unavailable: Error occurred while creating a new object: odd"),
            "odd"
        );
        assert_eq!(amqp("something else"), "something else");
    }
}
