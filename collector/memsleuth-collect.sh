#!/bin/sh
# memsleuth-collect.sh: capture a machine's memory sources into a memsleuth snapshot
# directory (or .tar.gz bundle) on machines without Node. POSIX sh with busybox
# applets only (cat, mkdir, rm, mv, dirname, sort, uniq, awk, tar, uname, date, wc); runs under
# busybox sh, dash and bash. It writes the same layout and manifest.json as
# `memsleuth snapshot` (src/model/snapshot.ts), which reads and analyses the result.
#
# Read-only by default: the only write to the kernel is `--kmemleak-scan`.
#
#   memsleuth-collect.sh -o DIR [-z] [--kmemleak-scan] [--no-page-owner]
#                        [--no-processes] [--no-smaps] [--no-slab-traces] [-q]
set -u

MSL_VERSION=0.1.0
TOOL="memsleuth-collect.sh $MSL_VERSION"

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
  --kmemleak-scan   write `scan` to /sys/kernel/debug/kmemleak (twice) before reading it:
                    the only option that writes to the kernel
  --no-page-owner   skip /sys/kernel/debug/page_owner (GBs on big machines)
  --no-processes    skip /proc/PID/* files
  --no-smaps        skip /proc/PID/smaps (keep smaps_rollup)
  --no-slab-traces  skip slab alloc/free traces
  -q                no progress on stderr
  -h, --help        show this help
EOF
}

out=''
pack=0
kmemleak_scan=0
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
    --no-page-owner) page_owner=0 ;;
    --no-processes) processes=0 ;;
    --no-smaps) smaps=0 ;;
    --no-slab-traces) slab_traces=0 ;;
    -q) quiet=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "memsleuth-collect: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "memsleuth-collect: -o DIR is required (see --help)" >&2; exit 2; }
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
: >"$files_list"
: >"$missing_list"
: >"$skipped_list"

say() {
  [ "$quiet" = 1 ] || echo "memsleuth-collect: $*" >&2
}

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

# source NAME LIVE-PATH ENABLE: a system-wide source (the SYSTEM_SOURCES table in src/model/snapshot.ts).
source_file() {
  if [ ! -r "$2" ] || [ -d "$2" ]; then
    missing "$1" "$(why_unreadable "$2")" "$3"
    return
  fi
  say "reading $2"
  copy "$2" "$1" || missing "$1" "$(why_unreadable "$2")" "$3"
}

started_uptime=$(uptime_now)
started_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)

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
source_file allocinfo /proc/allocinfo 'kernel 6.10+ with CONFIG_MEM_ALLOC_PROFILING; enable with sysctl vm.mem_profiling=1 or boot with sysctl.vm.mem_profiling=1'
if [ "$page_owner" = 1 ]; then
  source_file page_owner "$DEBUGFS/page_owner" 'boot with page_owner=on (needs CONFIG_PAGE_OWNER), mount debugfs (mount -t debugfs none /sys/kernel/debug), run as root'
else
  missing page_owner 'skipped (--no-page-owner)' 'omit --no-page-owner'
fi
source_file page_owner_stacks "$DEBUGFS/page_owner_stacks/show_stacks" 'kernel 6.9+ booted with page_owner=on, debugfs mounted, run as root'
source_file kmemleak "$DEBUGFS/kmemleak" 'needs CONFIG_DEBUG_KMEMLEAK (and kmemleak=on if CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF), debugfs mounted, run as root; `memsleuth kmemleak scan` triggers a scan'
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
      'boot with slub_debug=U (all caches) or slub_debug=U,<cache> (needs CONFIG_SLUB_DEBUG), mount debugfs, run as root'
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
rm -f "$files_list" "$missing_list" "$skipped_list"

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
