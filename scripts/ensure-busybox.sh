#!/usr/bin/env bash
# kubesim's containers get their root filesystems from Debian's static busybox (a shell, ps,
# chroot... in a tree with no libc). Install the package when missing and we may (root);
# otherwise kubesim runs containers unisolated and says so when it starts.
set -euo pipefail
if [ -x /bin/busybox ] && ! file -L /bin/busybox 2>/dev/null | grep -q dynamically; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "ensure-busybox: installing Debian's busybox-static package" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  exit 0
fi
echo "ensure-busybox: no static /bin/busybox; install Debian's 'busybox-static' (sudo apt-get install busybox-static)," \
  "or kubesim's containers run unisolated" >&2
exit 0
