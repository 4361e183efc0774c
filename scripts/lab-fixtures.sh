#!/bin/sh
# Pack one lab run (the output of `npm run lab -- --kernel K --out DIR`, or a cached run
# in ~/.cache/memsleuth-lab/captures-K-KEY) into test/fixtures/lab-K/: one memsleuth
# bundle per moment (before/mid/after.tar.gz, readable by every command as it is), the
# module's counters and the guest's dmesg. The archives are reproducible: sorted names,
# owner 0, mtime 0, gzip -9 without a name or timestamp.
#
#   scripts/lab-fixtures.sh 6.12 ~/.cache/memsleuth-lab/captures-6.12-31223712a013
set -eu
[ $# -eq 2 ] || { echo "usage: $0 6.1|6.12 LAB_RUN_DIR" >&2; exit 2; }
kernel=$1
run=$2
out="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/lab-$kernel"
for m in before mid after; do
  [ -f "$run/$m/manifest.json" ] || { echo "$run/$m/manifest.json missing: not a lab run" >&2; exit 1; }
done
mkdir -p "$out"
for m in before mid after; do
  # Member names as `memsleuth snapshot` writes them: manifest.json, meminfo, proc/1/status, ...
  (cd "$run/$m" && LC_ALL=C find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort) >"$out/.members"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$run/$m" -cf - -T "$out/.members" | gzip -9n >"$out/$m.tar.gz.partial"
  mv "$out/$m.tar.gz.partial" "$out/$m.tar.gz"
  cp "$run/$m.counters" "$out/$m.counters"
done
rm -f "$out/.members"
cp "$run/dmesg.txt" "$out/dmesg.txt"
ls -l "$out"
