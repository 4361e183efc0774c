#!/bin/sh
# Build a small x86_64 lab kernel from Debian's linux-source-<version> package.
#
#   build-kernel.sh VERSION DEST
#
# Unpacks /usr/src/linux-source-VERSION.tar.xz, runs `make tinyconfig`, merges
# config.fragment and config-VERSION.fragment, checks that every option landed, and
# builds bzImage plus the module build environment (Module.symvers, scripts). The
# finished tree is renamed to DEST only when everything succeeded, so DEST existing
# means the cache entry is complete. Progress goes to stderr.
set -eu

version=${1:?usage: build-kernel.sh VERSION DEST}
dest=${2:?usage: build-kernel.sh VERSION DEST}
here=$(cd "$(dirname "$0")" && pwd)
jobs=${LAB_JOBS:-2}
tarball=/usr/src/linux-source-$version.tar.xz
[ -r "$tarball" ] || {
  echo "build-kernel: $tarball missing (apt-get install linux-source-$version)" >&2
  exit 2
}

tmp=$dest.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "build-kernel: unpacking $tarball" >&2
tar -xJf "$tarball" -C "$tmp" --strip-components=1

cd "$tmp"
export ARCH=x86_64
echo "build-kernel: tinyconfig + lab fragments" >&2
make -s tinyconfig >&2
frags="$here/config.fragment"
[ -f "$here/config-$version.fragment" ] && frags="$frags $here/config-$version.fragment"
# shellcheck disable=SC2086
./scripts/kconfig/merge_config.sh -m .config $frags >&2
make -s olddefconfig >&2

# Every requested option must be in the final .config as asked.
bad=0
for f in $frags; do
  while IFS= read -r line; do
    case $line in
      CONFIG_*=*)
        grep -qx "$line" .config || {
          echo "build-kernel: $line did not land (got: $(grep "^${line%%=*}=" .config || echo 'not set'))" >&2
          bad=1
        }
        ;;
      '# CONFIG_'*' is not set')
        opt=${line#\# }
        opt=${opt%% *}
        if grep -q "^$opt=" .config; then
          echo "build-kernel: $opt should be off but is $(grep "^$opt=" .config)" >&2
          bad=1
        fi
        ;;
    esac
  done <"$f"
done
[ "$bad" -eq 0 ] || exit 1

echo "build-kernel: make -j$jobs bzImage modules (a few minutes)" >&2
make -s -j"$jobs" bzImage modules >&2
[ -f arch/x86/boot/bzImage ] && [ -f Module.symvers ] || {
  echo "build-kernel: build finished without bzImage or Module.symvers" >&2
  exit 1
}
cd /
trap - EXIT
rm -rf "$dest"
mv "$tmp" "$dest"
echo "build-kernel: ready: $dest" >&2
