# syntax=docker/dockerfile:1
#
# Switchboard worker image. Multi-stage: the first stage builds the
# `switchboard` binary, the second is a slim Debian with that binary only,
# running as a non-root user.
#
#   docker build -t switchboard .
#   docker run --rm -e AMQP_URL=... -e REDIS_URL=... switchboard          # a worker
#   docker run --rm -e AMQP_URL=... -e REDIS_URL=... switchboard dead list  # any operator command
#
# Checked without a Docker engine by .ci/dockerfile-check (hadolint plus
# Switchboard's own rules); never built in CI here.

# Pinned by tag: the Rust release the project is developed with, on Debian 12.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src workers/bench \
    && echo 'fn main() {}' > workers/main.rs \
    && echo 'fn main() {}' > workers/bench/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin switchboard \
    && rm -rf src workers
COPY src ./src
COPY workers ./workers
# Touch so cargo sees the real sources as newer than the placeholders.
RUN touch src/lib.rs workers/main.rs \
    && cargo build --release --locked --bin switchboard \
    && install -m 0755 target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
# ca-certificates: for amqps:// and rediss:// URLs. Not pinned to a Debian
# revision (DL3008): bookworm's security updates replace the old one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
USER 10001
ENV SWITCHBOARD_LOG_FORMAT=json \
    SWITCHBOARD_METRICS_ADDR=0.0.0.0:9464
# /metrics, /healthz and /readyz.
EXPOSE 9464
# Healthy while the worker consumes from RabbitMQ and Redis answers: its own
# /readyz, asked by `switchboard ready` (the image has no curl).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/switchboard", "ready", "127.0.0.1:9464"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run"]
