# syntax=docker/dockerfile:1
# The weft image: one image for every role (`weft control-plane`, `weft sidecar`, `weft gateway`,
# `weft run`, the admin verbs); the entrypoint is the weft CLI, the role its first argument.
#   docker build -t ghcr.io/weft-mesh/weft:0.1.0 .
# Build stage: install, compile TypeScript to dist/, then drop the dev dependencies.
FROM node:24-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The sources (.dockerignore keeps out tests, docs, deploy, node_modules and local state).
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Runtime: distroless Node 24, no shell, non-root (uid 65532). Probes are HTTP (no exec).
FROM gcr.io/distroless/nodejs24-debian13:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build --chown=65532:65532 /src/package.json ./package.json
COPY --from=build --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/proto ./proto
COPY --from=build --chown=65532:65532 /src/dist ./dist
USER 65532:65532
EXPOSE 15000 15001 15006 15012 15014 15017 15080
# V8 young generation capped at 2 × 16 MiB, as bin/weft does (docs/performance.md, "Memory").
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=16", "/app/dist/control-plane/cli/main.js"]
CMD ["--help"]
