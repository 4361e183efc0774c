# shellcheck shell=sh
# Scenario trace-kmem, sourced by /init (SCENARIO=trace-kmem in /lab.conf): the POSIX
# collector traces kernel allocations (--trace-kmem TRACE_SECONDS) while msl_leaky runs,
# then captures its snapshot; everything goes to the share as `trace/` and the guest
# powers off. test/lab/trace-kmem-suite.ts checks that `memsleuth trace report` names
# msl_slab_leak, msl_page_leak and msl_vmalloc_leak as outstanding and never the
# balanced churn path. Uses log/fail from /init and its /lab.conf settings.
mkdir -p /sys/kernel/tracing /tmp
mount -t tracefs nodev /sys/kernel/tracing || fail "cannot mount tracefs"
log "trace-kmem: tracing kernel allocations for ${TRACE_SECONDS} s"
sh /memsleuth-collect.sh -o /captures/trace --trace-kmem "$TRACE_SECONDS" \
  --no-page-owner --no-processes --no-slab-traces -q &
collector=$!
# Start the module only once the collector's instance records: its events are enabled
# (while tracing_on is 0; `1*` with a trigger) and then tracing_on is 1 (a new instance
# starts with 1, so that alone says nothing).
inst=/sys/kernel/tracing/instances/memsleuth-$collector
recording() {
  case $(cat "$inst/events/kmem/kmalloc/enable" 2>/dev/null) in 1*) ;; *) return 1 ;; esac
  [ "$(cat "$inst/tracing_on" 2>/dev/null)" = 1 ]
}
n=0
until recording; do
  n=$((n + 1))
  [ "$n" -gt 600 ] && fail "the collector did not start tracing in 60 s"
  sleep 0.1
done
# shellcheck disable=SC2086
insmod /msl_leaky.ko $MODULE_PARAMS || fail "insmod failed"
steps=$(cat /sys/module/msl_leaky/parameters/steps)
n=0
while [ "$(cat /sys/module/msl_leaky/parameters/completed)" -lt "$steps" ]; do
  n=$((n + 1))
  [ "$n" -gt "$TRACE_SECONDS" ] && fail "module did not finish $steps steps within the trace"
  sleep 1
done
log "module finished $steps steps; waiting for the collector"
wait "$collector" || fail "collector failed"
[ -d "$inst" ] && fail "the collector left its tracing instance"
# The slab trace switch (slub_debug=...T,TCPv6 on this boot: busybox nc listens on IPv6):
# SLAB_TRACE_SOCKETS listening sockets, the first half closed again; the kernel log then
# holds a TRACE alloc with its call trace per socket and a TRACE free per closed one.
if [ "$(cat /sys/kernel/slab/TCPv6/trace 2>/dev/null)" = 1 ]; then
  pids=''
  p=7000
  while [ "$p" -lt $((7000 + SLAB_TRACE_SOCKETS)) ]; do
    nc -l -p "$p" </dev/null >/dev/null 2>&1 &
    pids="$pids $!"
    p=$((p + 1))
  done
  sleep 2
  n=0
  for pid in $pids; do
    n=$((n + 1))
    [ "$n" -le $((SLAB_TRACE_SOCKETS / 2)) ] && kill "$pid"
  done
  sleep 2
  dmesg >/captures/slab-trace.log
  log "slab trace: $(grep -c 'TRACE TCPv6' /captures/slab-trace.log) TRACE lines"
fi
for f in /sys/module/msl_leaky/parameters/*; do
  echo "${f##*/}=$(cat "$f")"
done >/captures/trace.counters
cp -r /captures/trace /captures/trace.counters /mnt/out/ || fail "copy to the share failed"
[ -f /captures/slab-trace.log ] && cp /captures/slab-trace.log /mnt/out/
ls /sys/kernel/tracing/instances >/mnt/out/instances-after.txt
dmesg >/mnt/out/dmesg.txt
sync
echo ok >/mnt/out/done
sync
umount /mnt
log "done; powering off"
reboot -f
