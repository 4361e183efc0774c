# The lab's OOM boot (lab/oom.ts), sourced by /init when the initramfs has
# /scenario.sh: the kernel runs out of memory three ways, one after the other, and the
# console log (captured by qemu) keeps every OOM-killer report:
#   (a) user space: msl_hog allocates until the OOM killer kills it (a global OOM);
#   (b) a memory cgroup: msl_memcg_hog in a cgroup v2 child with a small memory.max;
#   (c) the kernel: msl_leaky leaks pages straight from the buddy allocator until
#       nothing is left to kill (a bystander first, then the kernel panics with
#       "System is deadlocked on memory").
# /lab.conf sets MEMCG_MAX_MIB, BYSTANDER_MIB and LEAK_PARAMS. The log of (a) and (b)
# is also copied to the share before (c), which ends the boot.

killed_by_oom() {
  # A SIGKILL shows as 137; anything else means the OOM killer did not do it.
  [ "$2" = 137 ] || fail "$1 exited with $2, not killed by the OOM killer"
  log "oom: $1 killed (exit $2)"
  # Let the oom_reaper print its line before the next scenario.
  sleep 2
}

log "oom: (a) user-space hog, global OOM"
/msl_hog
killed_by_oom msl_hog $?

log "oom: (b) memory cgroup msl-oom, memory.max ${MEMCG_MAX_MIB} MiB"
mkdir -p /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"
echo +memory >/sys/fs/cgroup/cgroup.subtree_control || fail "no memory controller"
mkdir /sys/fs/cgroup/msl-oom || fail "cannot create the cgroup"
echo $((MEMCG_MAX_MIB * 1024 * 1024)) >/sys/fs/cgroup/msl-oom/memory.max || fail "cannot set memory.max"
sh -c 'echo $$ >/sys/fs/cgroup/msl-oom/cgroup.procs && exec /msl_memcg_hog'
killed_by_oom msl_memcg_hog $?

dmesg >/mnt/out/dmesg-user.txt
sync

log "oom: (c) kernel page leak: msl_leaky $LEAK_PARAMS, bystander msl_hog ${BYSTANDER_MIB} MiB"
/msl_hog "$BYSTANDER_MIB" hold &
sleep 1
echo started >/mnt/out/leak-started
sync
# shellcheck disable=SC2086
insmod /msl_leaky.ko $LEAK_PARAMS || fail "insmod failed"
# Wait with a shell builtin: a `sleep` child would be one more process to kill.
mkfifo /never
read -r -t 600 _ <>/never
fail "the kernel did not run out of memory within 600 s"
