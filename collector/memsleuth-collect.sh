#!/bin/sh
# memsleuth-collect.sh: capture a machine's memory sources into a memsleuth snapshot
# directory (or .tar.gz bundle) on machines without Node. POSIX sh with busybox
# applets only (cat, mkdir, rm, mv, dirname, sort, uniq, awk, tar, uname, date, wc, ls, stat,
# find, head, grep, du, sleep); runs under busybox sh, dash and bash. It writes the same layout
# and manifest.json as `memsleuth snapshot` (src/model/snapshot.ts), which reads and analyses
# the result; `memsleuth record --from DIR` turns a directory of periodic captures into a
# recording.
#
# Read-only by default: the only writes to the kernel are `--kmemleak-scan` and
# `--trace-kmem` (its own tracing instance, removed again, also on Ctrl-C and SIGTERM).
#
#   memsleuth-collect.sh -o DIR [-z] [--kmemleak-scan] [--trace-kmem SECONDS]
#                        [--no-page-owner] [--no-processes] [--no-smaps]
#                        [--no-slab-traces] [-q] [--every SECONDS [--count N] [--keep N]]
set -u

MSL_VERSION=0.1.0
TOOL="memsleuth-collect.sh $MSL_VERSION"
# Periodic capture (`memsleuth collector --interval 10m --count N --keep N` sets these):
# seconds between captures (0: one capture), captures to take (0: until stopped), and how
# many of the newest captures to keep on disk.
EVERY=0
COUNT=0
KEEP=144

usage() {
  cat <<'EOF'
Usage: memsleuth-collect.sh -o DIR [options]

Capture this machine's memory sources (meminfo, slabinfo, vmallocinfo, page_owner,
kmemleak, slab traces, allocinfo, per-process smaps...) into DIR, in the layout that
`memsleuth report DIR` reads. Progress goes to stderr. Run as root for the debugfs
sources (mount -t debugfs none /sys/kernel/debug).

Options:
  -o DIR            write the snapshot directory DIR (must not exist yet)
  -z                pack DIR into DIR.tar.gz (a bundle) and remove DIR
  --kmemleak-scan   write `scan` to /sys/kernel/debug/kmemleak (twice) before reading it
  --trace-kmem S    first trace kernel allocations (kmem events with stacks) for S seconds
                    into trace/kmem, in a tracing instance of its own (memsleuth-PID) that
                    is removed afterwards; `memsleuth trace report DIR` analyses it
                    (these two options are the only writes to the kernel)
  --no-page-owner   skip /sys/kernel/debug/page_owner (GBs on big machines)
  --no-processes    skip /proc/PID/* files
  --no-smaps        skip /proc/PID/smaps (keep smaps_rollup)
  --no-slab-traces  skip slab alloc/free traces
  -q                no progress on stderr
  -h, --help        show this help

Periodic capture (for `memsleuth record --from DIR`, then `memsleuth leaks`):
  --every SECONDS   capture every SECONDS into DIR/<UTC time>.tar.gz (DIR may exist)
  --count N         stop after N captures (default: until killed)
  --keep N          keep only the newest N captures in DIR (default 144): the disk used
                    is at most N captures; older ones are deleted
EOF
}

out=''
pack=0
kmemleak_scan=0
trace_kmem=''
page_owner=1
processes=1
smaps=1
slab_traces=1
quiet=0
while [ $# -gt 0 ]; do
  case $1 in
    -o)
      [ $# -ge 2 ] || { echo "memsleuth-collect: -o needs a directory" >&2; exit 2; }
      out=$2
      shift
      ;;
    -o*) out=${1#-o} ;;
    -z) pack=1 ;;
    --kmemleak-scan) kmemleak_scan=1 ;;
    --trace-kmem)
      [ $# -ge 2 ] || { echo "memsleuth-collect: --trace-kmem needs SECONDS" >&2; exit 2; }
      trace_kmem=$2
      shift
      ;;
    --no-page-owner) page_owner=0 ;;
    --no-processes) processes=0 ;;
    --no-smaps) smaps=0 ;;
    --no-slab-traces) slab_traces=0 ;;
    --every | --count | --keep)
      [ $# -ge 2 ] || { echo "memsleuth-collect: $1 needs a number" >&2; exit 2; }
      case $2 in '' | *[!0-9]*) echo "memsleuth-collect: $1 needs a whole number, not '$2'" >&2; exit 2 ;; esac
      case $1 in --every) EVERY=$2 ;; --count) COUNT=$2 ;; --keep) KEEP=$2 ;; esac
      shift
      ;;
    -q) quiet=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "memsleuth-collect: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "memsleuth-collect: -o DIR is required (see --help)" >&2; exit 2; }
case $trace_kmem in
  '' | *[!0-9]*) [ -z "$trace_kmem" ] || { echo "memsleuth-collect: --trace-kmem: expected whole seconds, found $trace_kmem" >&2; exit 2; } ;;
esac

say() {
  [ "$quiet" = 1 ] || echo "memsleuth-collect: $*" >&2
}

# Periodic mode: the script runs itself once per capture (`--every 0`: one capture, in a fresh shell), writing
# DIR/.partial-<time> and renaming the finished bundle to DIR/<time>.tar.gz, so DIR only ever
# holds complete captures; then deletes the oldest beyond --keep.
if [ "$EVERY" -gt 0 ]; then
  if [ ! -f "$0" ]; then
    echo "memsleuth-collect: --every needs the script saved to a file (run: sh FILE -o DIR ...)" >&2
    exit 2
  fi
  [ "$KEEP" -gt 0 ] || { echo "memsleuth-collect: --keep must be at least 1" >&2; exit 2; }
  mkdir -p "$out" || exit 1
  rm -rf "$out"/.partial-*
  pass=''
  [ "$kmemleak_scan" = 1 ] && pass="$pass --kmemleak-scan"
  [ -n "$trace_kmem" ] && pass="$pass --trace-kmem $trace_kmem"
  [ "$page_owner" = 0 ] && pass="$pass --no-page-owner"
  [ "$processes" = 0 ] && pass="$pass --no-processes"
  [ "$smaps" = 0 ] && pass="$pass --no-smaps"
  [ "$slab_traces" = 0 ] && pass="$pass --no-slab-traces"
  # Each capture runs in a fresh shell of the kind running this loop (busybox sh, dash,
  # bash): /proc/$$/exe names it; busybox needs its applet name.
  shell=$(readlink /proc/$$/exe 2>/dev/null) || shell=''
  case $shell in
    '') shell=sh ;;
    */busybox*) shell="$shell sh" ;;
  esac
  child=''
  stop() {
    [ -n "$child" ] && kill "$child" 2>/dev/null
    rm -rf "$out"/.partial-*
    exit 143
  }
  trap stop INT TERM HUP
  start=$(awk '{ printf "%d", $1 }' /proc/uptime)
  say "capturing into $out every ${EVERY}s$([ "$COUNT" != 0 ] && echo ", $COUNT times"), keeping the newest $KEEP"
  n=0
  while [ "$COUNT" = 0 ] || [ "$n" -lt "$COUNT" ]; do
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    # Names are per second: a second capture within the same second waits for the next one.
    while [ -e "$out/$stamp.tar.gz" ]; do
      sleep 1
      stamp=$(date -u +%Y%m%dT%H%M%SZ)
    done
    # shellcheck disable=SC2086 # $shell is a command and its first argument; $pass a list of options
    $shell "$0" -o "$out/.partial-$stamp" -z -q --every 0 $pass >/dev/null &
    child=$!
    wait "$child"
    rc=$?
    child=''
    if [ "$rc" = 0 ] && mv "$out/.partial-$stamp.tar.gz" "$out/$stamp.tar.gz"; then
      n=$((n + 1))
      echo "$out/$stamp.tar.gz"
      say "capture $n: $out/$stamp.tar.gz ($(du -k "$out/$stamp.tar.gz" | awk '{ print $1 }') KiB)"
    else
      say "capture at $stamp failed (exit $rc)"
    fi
    rm -rf "$out"/.partial-*
    # Keep the newest KEEP captures (names sort by time).
    ls "$out" | grep -E '^[0-9]{8}T[0-9]{6}Z\.tar\.gz$' | sort |
      awk -v keep="$KEEP" '{ name[NR] = $0 } END { for (i = 1; i <= NR - keep; i++) print name[i] }' |
      while read -r old; do rm -f "$out/$old"; done
    [ "$COUNT" != 0 ] && [ "$n" -ge "$COUNT" ] && break
    now=$(awk '{ printf "%d", $1 }' /proc/uptime)
    wait_s=$((start + (n + 1) * EVERY - now))
    # Behind schedule (a capture took longer than the interval): the next one starts now.
    if [ "$wait_s" -gt 0 ]; then
      sleep "$wait_s" &
      child=$!
      wait "$child"
      child=''
    fi
  done
  exit 0
fi

if [ -e "$out" ]; then
  echo "memsleuth-collect: $out: already exists; choose a new directory name" >&2
  exit 2
fi
if [ "$pack" = 1 ] && [ -e "$out.tar.gz" ]; then
  echo "memsleuth-collect: $out.tar.gz: already exists" >&2
  exit 2
fi
mkdir -p "$out" || exit 1

DEBUGFS=/sys/kernel/debug
SYSSLAB=/sys/kernel/slab
TAB=$(printf '\t')
# Bookkeeping lives beside the snapshot while it is written, and is removed at the end.
files_list="$out/.files"
missing_list="$out/.missing"
skipped_list="$out/.skipped"
config_list="$out/.config"
: >"$files_list"
: >"$missing_list"
: >"$skipped_list"

uptime_now() {
  read -r up _ </proc/uptime 2>/dev/null && echo "$up" || echo 0
}

debugfs_mounted() {
  awk -v d="$DEBUGFS" '$2 == d { found = 1 } END { exit !found }' /proc/mounts 2>/dev/null
}

# missing PATH REASON ENABLE
missing() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$missing_list"
}

# Why a live file cannot be read, in the words `memsleuth snapshot` uses.
why_unreadable() {
  if [ ! -e "$1" ]; then
    case $1 in
      "$DEBUGFS"/*) debugfs_mounted || { echo 'debugfs not mounted'; return; } ;;
    esac
    echo 'not present in this kernel (feature not built in or not enabled)'
  elif [ ! -r "$1" ]; then
    echo 'permission denied'
  else
    echo 'read failed'
  fi
}

# The running kernel's build configuration (/proc/config.gz, else /boot/config-RELEASE),
# read once when a hint needs it; empty when neither is readable.
config_read=0
read_config() {
  [ "$config_read" = 1 ] && return
  config_read=1
  : >"$config_list"
  if [ -r /proc/config.gz ]; then
    { gzip -dc /proc/config.gz || zcat /proc/config.gz; } >"$config_list" 2>/dev/null || : >"$config_list"
  fi
  if [ ! -s "$config_list" ] && [ -r "/boot/config-$(uname -r)" ]; then
    cat "/boot/config-$(uname -r)" >"$config_list" 2>/dev/null || : >"$config_list"
  fi
}

# enable_hint ENABLE [CONFIG]: how to enable a source, or that this kernel cannot have it
# (its config option is "not set"), in the words `memsleuth snapshot` uses.
enable_hint() {
  if [ -n "${2:-}" ]; then
    read_config
    if grep -q "^# $2 is not set\$" "$config_list" 2>/dev/null; then
      echo "this kernel is built without $2: rebuild it with $2=y (no boot option enables it); then $1"
      return
    fi
  fi
  echo "$1"
}

# copy LIVE SNAPSHOT-PATH: 0 when copied; the partial file is removed on failure.
copy() {
  mkdir -p "$out/$(dirname "$2")" 2>/dev/null
  if cat "$1" >"$out/$2" 2>/dev/null; then
    echo "$2" >>"$files_list"
    return 0
  fi
  rm -f "$out/$2"
  return 1
}

# source NAME LIVE-PATH ENABLE [CONFIG]: a system-wide source (the SYSTEM_SOURCES table in
# src/model/snapshot.ts); CONFIG is the kernel option it needs.
source_file() {
  if [ ! -r "$2" ] || [ -d "$2" ]; then
    missing "$1" "$(why_unreadable "$2")" "$(enable_hint "$3" "${4:-}")"
    return
  fi
  say "reading $2"
  copy "$2" "$1" || missing "$1" "$(why_unreadable "$2")" "$(enable_hint "$3" "${4:-}")"
}

started_uptime=$(uptime_now)
started_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# --trace-kmem: kmem tracepoints with the kernel stack of every allocation, in an
# instance of our own (never the global buffer), read from trace_pipe into trace/kmem;
# the same setup as `memsleuth trace kernel` (src/trace/kernel.ts), so `memsleuth trace
# report` pairs allocations with frees the same way. Instances, uprobe groups and mount
# points of memsleuth runs that no longer exist (killed) are removed first.
trace_tfs=''
trace_mount=''
trace_inst=''
trace_reader=''
trace_sleep=''
trace_cleanup() {
  [ -n "$trace_sleep" ] && kill "$trace_sleep" 2>/dev/null
  trace_sleep=''
  if [ -n "$trace_reader" ]; then
    kill "$trace_reader" 2>/dev/null
    # trace_pipe stays busy until the reader is gone.
    wait "$trace_reader" 2>/dev/null
  fi
  trace_reader=''
  if [ -n "$trace_inst" ] && [ -d "$trace_inst" ]; then
    echo 0 >"$trace_inst/tracing_on" 2>/dev/null
    n=0
    until rmdir "$trace_inst" 2>/dev/null; do
      n=$((n + 1))
      [ "$n" -gt 50 ] && {
        echo "memsleuth-collect: could not remove $trace_inst" >&2
        break
      }
      sleep 0.1
    done
  fi
  trace_inst=''
  if [ -n "$trace_mount" ]; then
    umount "$trace_mount" 2>/dev/null || umount -l "$trace_mount" 2>/dev/null
    rmdir "$trace_mount" 2>/dev/null
  fi
  trace_mount=''
}
trace_stale() {
  for d in "$trace_tfs"/instances/memsleuth-*; do
    [ -d "$d" ] || continue
    pid=${d##*/memsleuth-}
    pid=${pid%%-*}
    case $pid in '' | *[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null && continue
    echo 0 >"$d/tracing_on" 2>/dev/null
    # A killed collector's reader (`cat .../trace_pipe`) lives on and keeps it busy. It
    # may have opened it through another mount point (the killed collector's own private
    # mount), so it is matched by the instance's name, not by this path.
    for c in $(grep -l "/instances/${d##*/}/trace_pipe" /proc/[0-9]*/cmdline 2>/dev/null); do
      c=${c#/proc/}
      kill "${c%/cmdline}" 2>/dev/null
    done
    n=0
    until rmdir "$d" 2>/dev/null; do
      n=$((n + 1))
      [ "$n" -gt 20 ] && break
      sleep 0.1
    done
    [ -d "$d" ] || say "removed $d (pid $pid is gone)"
  done
  if [ -w "$trace_tfs/uprobe_events" ]; then
    awk '$1 ~ /^[pr]:memsleuth_[0-9]+(_[0-9]+)?\// { split($1, a, ":"); print a[2] }' "$trace_tfs/uprobe_events" |
      while read -r ev; do
        pid=${ev#memsleuth_}
        pid=${pid%%/*}
        pid=${pid%%_*}
        kill -0 "$pid" 2>/dev/null && continue
        echo "-:$ev" >>"$trace_tfs/uprobe_events" 2>/dev/null && say "removed uprobe $ev (pid $pid is gone)"
      done
  fi
  awk '$3 == "tracefs" { print $2 }' /proc/mounts | while read -r m; do
    case $m in */memsleuth-tracefs-[0-9]*) ;; *) continue ;; esac
    pid=${m##*-}
    [ "$m" = "$trace_tfs" ] && continue
    kill -0 "$pid" 2>/dev/null && continue
    umount "$m" 2>/dev/null && rmdir "$m" 2>/dev/null && say "unmounted $m (pid $pid is gone)"
  done
}
trace_enable() { # EVENT [FILTER]: enable a kmem event; allocation events get a stack
  [ -d "$trace_inst/events/kmem/$1" ] || return 0
  if [ -n "${2:-}" ]; then
    echo "$2" >"$trace_inst/events/kmem/$1/filter" || return 1
  fi
  case $1 in
    kmalloc | kmalloc_node | kmem_cache_alloc | kmem_cache_alloc_node | mm_page_alloc)
      if [ -n "${2:-}" ]; then
        echo "stacktrace if $2" >"$trace_inst/events/kmem/$1/trigger" || return 1
      else
        echo stacktrace >"$trace_inst/events/kmem/$1/trigger" || return 1
      fi
      ;;
  esac
  echo 1 >"$trace_inst/events/kmem/$1/enable"
}
trace_kmem_run() {
  trace_tfs=$(awk '$3 == "tracefs" && $2 !~ /memsleuth-tracefs-/ { print $2; exit }' /proc/mounts 2>/dev/null)
  if [ -z "$trace_tfs" ]; then
    trace_mount="${TMPDIR:-/tmp}/memsleuth-tracefs-$$"
    mkdir -p "$trace_mount" && mount -t tracefs nodev "$trace_mount" 2>/dev/null || {
      rmdir "$trace_mount" 2>/dev/null
      trace_mount=''
      missing trace/kmem 'tracefs not available' 'a kernel with CONFIG_FTRACE and CONFIG_EVENT_TRACING, run as root'
      return
    }
    trace_tfs=$trace_mount
  fi
  if [ ! -d "$trace_tfs/events/kmem/kmalloc" ]; then
    missing trace/kmem 'no kmem trace events' 'a kernel with CONFIG_EVENT_TRACING'
    trace_cleanup
    return
  fi
  trace_stale
  trace_inst="$trace_tfs/instances/memsleuth-$$"
  if ! mkdir "$trace_inst" 2>/dev/null; then
    trace_inst=''
    missing trace/kmem 'cannot create a tracing instance' 'run as root'
    trace_cleanup
    return
  fi
  echo 0 >"$trace_inst/tracing_on"
  echo 4096 >"$trace_inst/buffer_size_kb"
  grep -q mono "$trace_inst/trace_clock" && echo mono >"$trace_inst/trace_clock"
  for o in overwrite:0 hash-ptr:0 sym-offset:1 irq-info:1; do
    [ -e "$trace_inst/options/${o%%:*}" ] && echo "${o##*:}" >"$trace_inst/options/${o%%:*}"
  done
  ok=1
  for ev in kmalloc kmalloc_node kmem_cache_alloc kmem_cache_alloc_node kfree kmem_cache_free mm_page_free mm_page_free_batched; do
    trace_enable "$ev" || ok=0
  done
  # Movable pages are page cache and anonymous memory: left out, as `memsleuth trace kernel` does.
  trace_enable mm_page_alloc 'migratetype != 1' || ok=0
  if [ "$ok" = 0 ]; then
    missing trace/kmem 'enabling the kmem events failed' 'run as root'
    trace_cleanup
    return
  fi
  mkdir -p "$out/trace"
  # Bounded, so a reader orphaned by a SIGKILL of this shell does not read forever.
  timeout $((trace_kmem + 300)) cat "$trace_inst/trace_pipe" >"$out/trace/kmem" &
  trace_reader=$!
  # The reader's own allocations (formatting, the file it writes) are not the subject.
  [ -e "$trace_inst/set_event_notrace_pid" ] && echo "$$ $trace_reader" >"$trace_inst/set_event_notrace_pid" 2>/dev/null
  say "tracing kernel allocations for $trace_kmem s (instance $trace_inst)"
  echo 1 >"$trace_inst/tracing_on"
  # In the background, so SIGINT/SIGTERM interrupt the wait (a foreground sleep defers the trap).
  sleep "$trace_kmem" &
  trace_sleep=$!
  wait "$trace_sleep"
  trace_sleep=''
  echo 0 >"$trace_inst/tracing_on"
  # Let the reader drain the buffer (entries: 0 on every CPU), then stop it.
  n=0
  while [ "$n" -lt 120 ] && cat "$trace_inst"/per_cpu/cpu*/stats 2>/dev/null | grep -q '^entries: [1-9]'; do
    sleep 1
    n=$((n + 1))
  done
  sleep 1
  for c in "$trace_inst"/per_cpu/cpu*; do
    echo "${c##*/}:"
    cat "$c/stats"
  done >"$out/trace/kmem.stats" 2>/dev/null
  echo trace/kmem >>"$files_list"
  echo trace/kmem.stats >>"$files_list"
  trace_cleanup
  say "trace/kmem: $(wc -l <"$out/trace/kmem") lines"
}
if [ -n "$trace_kmem" ]; then
  trap 'trace_cleanup; exit 130' INT TERM HUP
  trace_kmem_run
  trap - INT TERM HUP
fi

if [ "$kmemleak_scan" = 1 ]; then
  if [ -w "$DEBUGFS/kmemleak" ]; then
    # A first scan only records each new object's checksum; an object whose contents
    # changed since allocation is reported from the second scan on (mm/kmemleak.c,
    # update_checksum), and only once it is older than about 5 s.
    say "kmemleak scan (1/2)"
    echo scan >"$DEBUGFS/kmemleak" 2>/dev/null
    say "kmemleak scan (2/2)"
    echo scan >"$DEBUGFS/kmemleak" 2>/dev/null || say "kmemleak scan failed"
  else
    say "kmemleak scan requested but $DEBUGFS/kmemleak is not writable"
  fi
fi

# BEGIN SOURCES: generated from SYSTEM_SOURCES in src/model/snapshot.ts (npm run collector:sources)
source_file meminfo /proc/meminfo 'always present'
source_file buddyinfo /proc/buddyinfo 'always present with CONFIG_PROC_FS'
source_file slabinfo /proc/slabinfo 'needs root (mode 0400) and CONFIG_SLUB_DEBUG or CONFIG_SLAB'
source_file vmallocinfo /proc/vmallocinfo 'needs root (mode 0400); callers are hidden without CAP_SYSLOG (kptr_restrict)'
source_file zoneinfo /proc/zoneinfo 'always present'
source_file vmstat /proc/vmstat 'always present'
source_file pagetypeinfo /proc/pagetypeinfo 'needs root (mode 0400 since 5.6)'
source_file allocinfo /proc/allocinfo 'kernel 6.10+ with CONFIG_MEM_ALLOC_PROFILING; enable with sysctl vm.mem_profiling=1 or boot with sysctl.vm.mem_profiling=1' CONFIG_MEM_ALLOC_PROFILING
if [ "$page_owner" = 1 ]; then
  source_file page_owner "$DEBUGFS/page_owner" 'boot with page_owner=on (needs CONFIG_PAGE_OWNER), mount debugfs (mount -t debugfs none /sys/kernel/debug), run as root' CONFIG_PAGE_OWNER
else
  missing page_owner 'skipped (--no-page-owner)' 'omit --no-page-owner'
fi
source_file page_owner_stacks "$DEBUGFS/page_owner_stacks/show_stacks" 'kernel 6.9+ booted with page_owner=on, debugfs mounted, run as root' CONFIG_PAGE_OWNER
source_file kmemleak "$DEBUGFS/kmemleak" 'needs CONFIG_DEBUG_KMEMLEAK (and kmemleak=on if CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF), debugfs mounted, run as root; `memsleuth kmemleak scan` triggers a scan' CONFIG_DEBUG_KMEMLEAK
source_file sysvipc_shm /proc/sysvipc/shm 'needs CONFIG_SYSVIPC (and CONFIG_PROC_FS); run as root to see segments of other IPC namespaces'
# END SOURCES

# Slab call sites: debugfs slab/<cache>/{alloc,free}_traces (5.14+, caches with
# slub_debug=U) and the older sysfs slab/<cache>/{alloc,free}_calls (<= 5.13).
if [ "$slab_traces" = 1 ]; then
  traces=0
  if [ -d "$DEBUGFS/slab" ]; then
    say "reading $DEBUGFS/slab/*/alloc_traces"
    for d in "$DEBUGFS"/slab/*; do
      [ -d "$d" ] || continue
      cache=${d##*/}
      for kind in alloc_traces free_traces; do
        [ -r "$d/$kind" ] || continue
        copy "$d/$kind" "slab/$cache.$kind" && traces=$((traces + 1))
      done
    done
  fi
  if [ -d "$SYSSLAB" ]; then
    for d in "$SYSSLAB"/*; do
      cache=${d##*/}
      case $cache in :*) continue ;; esac
      for kind in alloc_calls free_calls; do
        [ -r "$d/$kind" ] || continue
        copy "$d/$kind" "slab/$cache.$kind" && traces=$((traces + 1))
      done
    done
  fi
  if [ "$traces" = 0 ]; then
    if debugfs_mounted; then reason='no slab caches with user tracking'; else reason='debugfs not mounted'; fi
    missing 'slab/*.alloc_traces' "$reason" \
      "$(enable_hint 'boot with slub_debug=U (all caches) or slub_debug=U,<cache> (needs CONFIG_SLUB_DEBUG), mount debugfs, run as root' CONFIG_SLUB_DEBUG)"
  fi
fi
# Per-cache attributes (reclaim_account: 1 when the cache counts as SReclaimable).
# Merged caches also appear as `:0000024`-style aliases; slabinfo uses the names.
if [ -d "$SYSSLAB" ]; then
  for d in "$SYSSLAB"/*; do
    cache=${d##*/}
    case $cache in :*) continue ;; esac
    [ -r "$d/reclaim_account" ] && copy "$d/reclaim_account" "slab/$cache.reclaim_account"
  done
fi

# tmpfs mounts (memsleuth's listing, src/sources/tmpfs.ts): statfs of each mount point
# (stat -f) and its largest files by allocated bytes (find -xdev, stat). A path mounted over
# counts once; a tmpfs bind-mounted in several places (one device) once, at the first place.
say "reading tmpfs mounts"
mkdir -p "$out/tmpfs"
NL=$(printf '\nx')
NL=${NL%x}
echo '# memsleuth tmpfs mounts: mount size_bytes used_bytes inodes inodes_used' >"$out/tmpfs/mounts"
echo '# memsleuth tmpfs files: mount allocated_bytes size_bytes inode path' >"$out/tmpfs/files"
awk '
  function unesc(s,   o) {
    o = ""
    while (match(s, /\\[0-7][0-7][0-7]/)) {
      o = o substr(s, 1, RSTART - 1) sprintf("%c", substr(s, RSTART + 1, 1) * 64 + substr(s, RSTART + 2, 1) * 8 + substr(s, RSTART + 3, 1))
      s = substr(s, RSTART + 4)
    }
    return o s
  }
  $3 == "tmpfs" && !seen[$2]++ { print $2 "\t" unesc($2) }' /proc/mounts 2>/dev/null |
  while IFS="$TAB" read -r esc dir; do
    dev=$(stat -c %d "$dir" 2>/dev/null) || continue
    case " ${devs:-} " in *" $dev "*) continue ;; esac
    devs="${devs:-} $dev"
    # The escaped name goes through the environment: awk -v would undo its \040 escapes.
    stat -f -c '%b %f %S %c %d' "$dir" 2>/dev/null |
      M=$esc awk '{ printf "%s %.0f %.0f %s %.0f\n", ENVIRON["M"], $1 * $3, ($1 - $2) * $3, $4, $4 - $5 }' >>"$out/tmpfs/mounts"
    find "$dir" -xdev -type f ! -name "*$NL*" -exec stat -c '%b %B %s %i %n' {} + 2>/dev/null |
      awk '{ p = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", p); printf "%.0f %s %s %s\n", $1 * $2, $3, $4, p }' |
      sort -rn | head -n 50 | M=$esc awk '{ print ENVIRON["M"] " " $0 }' >>"$out/tmpfs/files"
  done
printf '%s\n%s\n' tmpfs/mounts tmpfs/files >>"$files_list"

# fd_listing /proc/PID PATH: write the fd directory as text to PATH in the snapshot
# (src/sources/fd_listing.ts): fd, open mode from the link's permission bits, target; the size
# and inode of memfds and deleted files (stat -L follows the magic link to the open file).
# Fails when ls cannot read it.
fd_listing() {
  # ls fails on a directory it cannot open (the process exited, or permission) ...
  if ! ls -l "$1/fd" >"$out/$2.ls" 2>/dev/null && [ ! -s "$out/$2.ls" ]; then
    rm -f "$out/$2.ls"
    return 1
  fi
  # ... and prints a link it could not read without a target: every link when ptrace access
  # checks refuse (even root), a few when fds close meanwhile.
  if ! awk '/^l/ { if (index($0, " -> ")) good++; else bad++ } END { exit bad > 0 && good == 0 }' "$out/$2.ls"; then
    rm -f "$out/$2.ls"
    return 1
  fi
  {
    echo '# memsleuth fd listing: fd mode allocated_bytes inode target'
    awk '{
      i = index($0, " -> "); if (i == 0) next
      n = split(substr($0, 1, i - 1), f, " ")
      r = substr($1, 2, 1) == "r"; w = substr($1, 3, 1) == "w"; t = substr($0, i + 4)
      print f[n], (t !~ /^\// ? "-" : r && w ? "rw" : r ? "r" : w ? "w" : "-"), t
    }' "$out/$2.ls" | while read -r fd mode target; do
      case $target in
        /memfd:* | *' (deleted)')
          if st=$(stat -L -c '%b %B %i' "$1/fd/$fd" 2>/dev/null); then
            echo "$st" | T=$target awk -v fd="$fd" -v mode="$mode" '{ printf "%s %s %.0f %s %s\n", fd, mode, $1 * $2, $3, ENVIRON["T"] }'
            continue
          fi
          ;;
      esac
      echo "$fd $mode - - $target"
    done
  } >"$out/$2"
  rm -f "$out/$2.ls"
}

# Processes. One whose status cannot be read exited before or during the read and
# is skipped whole; other files that fail (permission) are counted per file.
if [ "$processes" = 1 ]; then
  say "reading /proc/PID/*"
  proc_failures="$out/.procfail"
  : >"$proc_failures"
  nproc=0
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case $pid in *[!0-9]*) continue ;; esac
    nproc=$((nproc + 1))
    # Kernel threads (PF_KTHREAD in stat's flags, the 9th field) own no user memory
    # and have no smaps_rollup; `memsleuth snapshot` leaves them out too.
    stat_line=$(cat "$p/stat" 2>/dev/null) || stat_line=''
    if [ -z "$stat_line" ]; then
      printf '%s\t%s\n' "$pid" 'exited during capture' >>"$skipped_list"
      continue
    fi
    set -- ${stat_line##*) }
    if [ $# -ge 7 ] && [ $(($7 & 0x200000)) != 0 ]; then
      continue
    fi
    mkdir -p "$out/proc/$pid"
    if ! cat "$p/status" >"$out/proc/$pid/status" 2>/dev/null || [ ! -s "$out/proc/$pid/status" ]; then
      rm -rf "$out/proc/$pid"
      printf '%s\t%s\n' "$pid" 'exited during capture' >>"$skipped_list"
      continue
    fi
    got="proc/$pid/status"
    gone=0
    for f in statm stat smaps smaps_rollup cmdline oom_score oom_score_adj; do
      [ "$f" = smaps ] && [ "$smaps" = 0 ] && continue
      if err=$(cat "$p/$f" 2>&1 >"$out/proc/$pid/$f"); then
        got="$got
proc/$pid/$f"
      else
        rm -f "$out/proc/$pid/$f"
        if [ ! -d "$p" ]; then
          gone=1
          break
        fi
        # Root too can be refused (ptrace access mode checks), so ask cat's message.
        if [ ! -r "$p/$f" ] || case $err in *[Pp]ermission*) true ;; *) false ;; esac; then
          printf '%s\t%s\n' "$f" 'permission denied' >>"$proc_failures"
        else
          printf '%s\t%s\n' "$f" 'read failed' >>"$proc_failures"
        fi
      fi
    done
    if [ "$gone" = 0 ]; then
      if fd_listing "$p" "proc/$pid/fd"; then
        got="$got
proc/$pid/fd"
      else
        rm -f "$out/proc/$pid/fd"
        if [ ! -d "$p" ]; then
          gone=1
        else
          printf '%s\t%s\n' fd 'permission denied' >>"$proc_failures"
        fi
      fi
    fi
    if [ "$gone" = 1 ]; then
      rm -rf "$out/proc/$pid"
      printf '%s\t%s\n' "$pid" 'exited during capture' >>"$skipped_list"
      continue
    fi
    echo "$got" >>"$files_list"
    [ $((nproc % 50)) = 0 ] && say "processes: $nproc"
  done
  # One missing entry per (file, reason), as `memsleuth snapshot` writes them.
  sort "$proc_failures" | uniq -c | while read -r n f reason; do
    if [ "$n" = 1 ]; then what=process; else what=processes; fi
    if [ "$reason" = 'permission denied' ]; then
      enable='run as root to read other users’ processes'
    else
      enable='kernel-dependent file'
    fi
    missing "proc/*/$f" "$reason for $n $what" "$enable"
  done
  rm -f "$proc_failures"
fi

# The manifest (the Manifest interface in src/model/snapshot.ts).
finished_uptime=$(uptime_now)
page_size=$(awk '/^KernelPageSize:/ { print $2 * 1024; exit }' /proc/self/smaps 2>/dev/null)
[ -n "$page_size" ] || page_size=4096
read -r host </proc/sys/kernel/hostname 2>/dev/null || host=$(uname -n)
read -r release </proc/sys/kernel/osrelease 2>/dev/null || release=$(uname -r)
read -r kversion </proc/sys/kernel/version 2>/dev/null || kversion=$(uname -v)
machine=$(uname -m)

# JSON text of a value: backslash, quote and control characters escaped.
json_escape_awk='
function esc(s) {
  gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\r/, "\\r", s)
  gsub(/[\001-\037]/, "?", s)
  return "\"" s "\""
}'
js() {
  printf '%s\n' "$1" | awk "$json_escape_awk"'{ print esc($0) }'
}

manifest="$out/manifest.json"
{
  echo '{'
  echo '  "format": "memsleuth-snapshot/1",'
  echo "  \"tool\": $(js "$TOOL"),"
  echo "  \"hostname\": $(js "$host"),"
  echo "  \"kernelRelease\": $(js "$release"),"
  echo "  \"kernelVersion\": $(js "$kversion"),"
  echo "  \"machine\": $(js "$machine"),"
  echo "  \"pageSizeBytes\": $page_size,"
  echo "  \"time\": \"$started_time\","
  echo "  \"uptimeSeconds\": $started_uptime,"
  echo "  \"durationSeconds\": $(awk -v a="$started_uptime" -v b="$finished_uptime" 'BEGIN { printf "%.2f", b - a }'),"
  echo '  "files": ['
  sort "$files_list" | awk "$json_escape_awk"'
    { if (NR > 1) printf ",\n"; printf "    %s", esc($0) }
    END { if (NR > 0) printf "\n" }'
  echo '  ],'
  echo '  "missing": ['
  awk -F "$TAB" "$json_escape_awk"'
    { if (NR > 1) printf ",\n"
      printf "    { \"path\": %s, \"reason\": %s, \"enable\": %s }", esc($1), esc($2), esc($3) }
    END { if (NR > 0) printf "\n" }' "$missing_list"
  echo '  ],'
  echo '  "skippedPids": ['
  awk -F "$TAB" "$json_escape_awk"'
    { if (NR > 1) printf ",\n"; printf "    { \"pid\": %d, \"reason\": %s }", $1, esc($2) }
    END { if (NR > 0) printf "\n" }' "$skipped_list"
  echo '  ]'
  echo '}'
} >"$manifest.tmp" && mv "$manifest.tmp" "$manifest"
nfiles=$(wc -l <"$files_list")
nmissing=$(wc -l <"$missing_list")
if [ "$quiet" = 0 ]; then
  while IFS="$TAB" read -r mpath mreason menable; do
    echo "  missing $mpath: $mreason. To enable: $menable" >&2
  done <"$missing_list"
fi
rm -f "$files_list" "$missing_list" "$skipped_list" "$config_list"

if [ "$pack" = 1 ]; then
  say "packing $out.tar.gz"
  if tar -czf "$out.tar.gz.partial" -C "$out" . && mv "$out.tar.gz.partial" "$out.tar.gz"; then
    rm -rf "$out"
    say "wrote $out.tar.gz: $nfiles files, $nmissing sources missing"
    echo "$out.tar.gz"
  else
    rm -f "$out.tar.gz.partial"
    echo "memsleuth-collect: packing failed; the directory $out is complete" >&2
    exit 1
  fi
else
  say "wrote $out: $nfiles files, $nmissing sources missing"
  echo "$out"
fi
exit 0
