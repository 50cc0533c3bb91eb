# cyberun-agent container image. Two ways to build it:
#
#   docker build -t cyberun-agent .
#       registry reachable: `npm ci` + `npm run build` inside the build stage.
#
#   node deploy/docker/stage-context.mjs /tmp/ctx && \
#   docker build --build-arg PREBUILT=1 --build-arg BASE=<local node image> -t cyberun-agent /tmp/ctx
#       no registry (air-gapped hosts, CI sandboxes): the host compiles dist/ and copies the
#       production node_modules into a context; nothing is downloaded during the build.
#
# Runs as uid 10001 (no shell login, no home outside the state dir). To reach the Docker socket:
#   docker run -d --name cyberun-agent --init --restart unless-stopped --stop-timeout 40 \
#     --group-add "$(stat -c %g /var/run/docker.sock)" -v /var/run/docker.sock:/var/run/docker.sock \
#     -v cyberun-agent-state:/var/lib/cyberun-agent \
#     -e CYBERUN_GATEWAY_URL=wss://… -e CYBERUN_AGENT_KEY=ak-… -e CYBERUN_AGENT_ID=$(hostname) cyberun-agent
# See docs/operations.md. This file uses only what Docker 20.10's legacy builder understands.

ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
ARG PREBUILT=0
WORKDIR /src
COPY . .
# Exec form: the base image needs no shell. Installs, compiles and prunes (PREBUILT=0), or checks
# the staged dist/ and node_modules/ (PREBUILT=1); creates the state dir owned by the agent user.
RUN ["node", "deploy/docker/build-step.mjs"]

FROM ${BASE}
LABEL org.opencontainers.image.title="cyberun-agent" \
      org.opencontainers.image.description="Runs Cyberun container services on this host's Docker Engine" \
      org.opencontainers.image.licenses="Apache-2.0"
# A young generation of at most 8 MiB per semi-space (V8's default grows to 16): idle RSS within
# the runs of 1 to 4 MiB, and under proxy load near default flags' GC (docs/operations.md, Footprint).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    HOME=/var/lib/cyberun-agent \
    CYBERUN_STATE_DIR=/var/lib/cyberun-agent
WORKDIR /app
COPY --from=build /src/package.json /app/package.json
COPY --from=build /src/bin /app/bin
COPY --from=build /src/node_modules /app/node_modules
COPY --from=build /src/dist /app/dist
COPY --from=build --chown=10001:10001 /state /var/lib/cyberun-agent
USER 10001:10001
VOLUME ["/var/lib/cyberun-agent"]
# The admin endpoint (a unix socket in the state dir) answers /healthz while the agent runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "/app/bin/cyberun-agent.js", "status", "--healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/cyberun-agent.js"]
CMD ["run"]
