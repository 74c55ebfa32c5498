#!/usr/bin/env bash
# Builds and smoke-tests the trendflow image with Podman where no image registry is reachable
# (the project machines): the Debian 12 base comes from debootstrap, the build runs with chroot
# isolation (no cgroups needed), and the smoke test runs inside the image as a build step, because
# the sandbox forbids an OCI runtime's setrlimit (`podman run` fails there; it works elsewhere).
#
#   sudo bash deploy/podman/base-image.sh            # base image, image, smoke test
#
# Needs: apt-get install podman debootstrap; redis-server on the host (the smoke test's broker).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOTFS=${ROOTFS:-/tmp/trendflow-rootfs}
TAG=${TAG:-localhost/trendflow:dev}
if ! podman image exists docker.io/library/debian:bookworm-slim; then
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian
  tar -C "$ROOTFS" -c . | podman import - docker.io/library/debian:bookworm-slim
fi
# The host's CA bundle for pip (a TLS-inspecting proxy) and its local torch CPU wheel, for the build
# only: mounted, so nothing of it lands in the image.
printf '[global]\ncert = /etc/pip-host-ca.crt\n' > /tmp/trendflow-build-pip.conf
podman build --isolation=chroot --network=host \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/pip-host-ca.crt:ro \
  --volume /tmp/trendflow-build-pip.conf:/etc/pip.conf:ro \
  $( [ -d /opt/wheels ] && echo "--volume /opt/wheels:/opt/wheels:ro --build-arg TORCH_FIND_LINKS=/opt/wheels" ) \
  -t "$TAG" .
port=16379
redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --maxmemory-policy noeviction \
  --daemonize yes --pidfile /tmp/trendflow-smoke-redis.pid
trap 'kill "$(cat /tmp/trendflow-smoke-redis.pid)"' EXIT
podman build --isolation=chroot --network=host --no-cache --build-arg IMAGE="$TAG" \
  --build-arg REDIS_URL="redis://127.0.0.1:$port/0" -f deploy/podman/smoke.Containerfile deploy/podman
