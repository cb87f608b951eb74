# The capture init container's image (`config.weft.dev/capture: iptables`): a shell and
# iptables-restore, nothing else. The rules come from the injector (WEFT_CAPTURE_RULES).
#   docker build -f deploy/images/weft-init.Dockerfile -t ghcr.io/weft-mesh/weft-init:0.1.0 deploy/images
FROM debian:trixie-slim
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
  && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["sh", "-c", "printf '%s' \"$WEFT_CAPTURE_RULES\" | iptables-restore"]
