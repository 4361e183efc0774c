#!/usr/bin/env bash
# Installs what the test suite needs that npm does not: Debian packages for the kernel
# lab and the differential tests. Runs as `npm test`'s pretest. As root it installs
# missing packages with apt-get; otherwise it only checks and fails if anything is
# missing, so CI never skips a suite silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# One package per line, filled by the areas that need them.
PACKAGES=(
  # kernel lab (lab/, test/lab): build kernels and the module, boot them, collect
  qemu-system-x86
  busybox-static
  dash
  cpio
  linux-source-6.1
  linux-source-6.12
  make
  gcc
  bc
  flex
  bison
  libelf-dev
  libssl-dev
  xz-utils
  # the OOM boot's user-space hog (lab/guest/hog.c) is linked with gcc -static: libc.a
  libc6-dev
  # processes: `pmap -x` parity tests (test/e2e/processes.test.ts, src/analysis/process.test.ts)
  procps
  # record & leaks: pidstat, the recorder-cost baseline of bench/leaks (npm run bench:leaks)
  sysstat
  # process-count benchmark: smem, the reference of `ps` and `report` (npm run bench:processes)
  smem
  # page_owner benchmark: /usr/bin/time -v for the C tool's peak RSS (npm run bench:page-owner)
  time
  # symbolization (src/symbols): eu-addr2line resolves frames to file:line; binutils'
  # objdump, readelf and addr2line are the tests' independent references
  elfutils
  binutils
  # web: the browser tests (test/browser) drive Debian's chromium with playwright-core
  chromium
  # fleet: a real Prometheus and promtool (test/e2e/fleet.test.ts, bench/fleet), node_exporter for
  # the names memsleuth shares with it (test/e2e/node-exporter.test.ts). Their services are not
  # started by the install (see below): the tests start their own on loopback.
  prometheus
  prometheus-node-exporter
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "ensure-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
  # Packages with daemons (prometheus, prometheus-node-exporter) would start them, listening on
  # every address: a policy-rc.d that refuses service starts keeps the machine as it was.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# memsleuth ensure-deps: no service starts while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"
  fi
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "ensure-deps: missing Debian packages: ${missing[*]}" >&2
  echo "ensure-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
