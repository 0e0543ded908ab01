#!/usr/bin/env bash
# Runs every test of ringfuse on the real kernel. Needs root: the tests mount
# filesystems with mount(2) and enable FUSE-over-io_uring.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
	echo "test.sh: run as root (the tests mount FUSE filesystems)" >&2
	exit 1
fi
param=/sys/module/fuse/parameters/enable_uring
if [ -w "$param" ] && [ "$(cat "$param")" != Y ]; then
	echo "test.sh: enabling FUSE-over-io_uring: echo Y > $param"
	echo Y > "$param"
fi
echo "kernel $(uname -r), enable_uring=$(cat "$param" 2>/dev/null || echo missing), $(nproc) CPUs, go $(go env GOVERSION)"
# -p 1: the mount tests drop caches and count descriptors, so packages run
# one at a time; -timeout bounds a hung mount.
go test -race -count=1 -p 1 -timeout 40m ./...
(cd bench && go test -count=1 -timeout 10m ./...)
