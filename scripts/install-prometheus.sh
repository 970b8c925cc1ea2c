#!/bin/sh
# Install Debian's `prometheus` package when the binary is missing (canary analysis
# queries a real Prometheus: controller/backends/prometheus.py). Called by `make test`
# and `make demo`. The package's own service is never started: modelplane starts its
# own Prometheus as a child process when it needs one.
set -eu

command -v prometheus >/dev/null 2>&1 && exit 0

fail() {
    echo "error: prometheus is not installed and $1; install Debian's 'prometheus' package (or put a Prometheus 2.x binary on PATH) and run make again" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available"
if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
    as_root() { sudo "$@"; }
else
    fail "this user is not root and has no sudo"
fi

# policy-rc.d answering 101 keeps invoke-rc.d and deb-systemd-invoke from starting the
# package's service during the install (the usual way in containers). Put one in place
# only when the system has none, and take it away afterwards.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY" || fail "$POLICY could not be written"
    trap 'as_root rm -f "$POLICY"' EXIT
fi

echo "installing Debian's prometheus package (once; its service is not started)"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get -o DPkg::Lock::Timeout=120 -qq update || fail "apt-get update failed"
as_root apt-get -o DPkg::Lock::Timeout=120 -qq install -y --no-install-recommends prometheus >/dev/null \
    || fail "apt-get install failed"
# Under systemd the package enables its unit for the next boot: nothing of it should run.
if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null 2>&1 || fail "the package installed no prometheus binary on PATH"
