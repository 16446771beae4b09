#!/usr/bin/env bash
# Base images for the Dockerfile made from Debian's own packages, for machines that reach Debian's
# repository but no container registry (docs/deploy.md, "Building the image"):
#   localhost/ephemera-base-python:bookworm  python3.11, pip (the Dockerfile's PYTHON_IMAGE)
#   localhost/ephemera-base-node:bookworm    nodejs and npm (its NODE_IMAGE)
# Then: podman build --build-arg PYTHON_IMAGE=localhost/ephemera-base-python:bookworm \
#                    --build-arg NODE_IMAGE=localhost/ephemera-base-node:bookworm -t ephemera:local .
set -euo pipefail
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${WORK:-$(mktemp -d)}
ENGINE=${ENGINE:-podman}

make_base() {  # name, packages...
  local name=$1; shift
  local root="$WORK/$name"
  # A minimal system first, then the packages with apt inside it: debootstrap's own --include
  # fails to configure large dependency trees (npm's hundreds of node-* packages).
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$WORK/$name.log"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get update -q >>"$WORK/$name.log"
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends ca-certificates "$@" >>"$WORK/$name.log"
  # Debian marks its Python externally managed (PEP 668); an image's own Python is the image's.
  mkdir -p "$root/etc"
  printf '[global]\nbreak-system-packages = true\n' >"$root/etc/pip.conf"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
  tar -C "$root" -c . | "$ENGINE" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "localhost/ephemera-base-$name:bookworm"
}

make_base python python3 python3-pip python-is-python3 passwd
make_base node nodejs npm
echo "made localhost/ephemera-base-python:bookworm and localhost/ephemera-base-node:bookworm (work dir $WORK)"
