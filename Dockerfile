# stampede as a container: the image the Kubernetes manifests in
# deploy/kubernetes use (`docker build -t stampede:latest .`).
# Stage 1 builds the release binary; stage 2 is Debian slim with the binary,
# the ready scenarios and a non-root user, nothing else.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY assets assets
RUN cargo build --release --locked --bin stampede

FROM debian:bookworm-slim
# Root certificates for https:// and wss:// targets; the base image pins
# the Debian release, so the package is not pinned again (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /results --create-home stampede
COPY --from=build /src/target/release/stampede /usr/local/bin/stampede
COPY scenarios /scenarios
USER 10001
WORKDIR /results
EXPOSE 8080
ENTRYPOINT ["stampede"]
CMD ["--help"]
