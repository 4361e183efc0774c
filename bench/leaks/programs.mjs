// Sources of the scenario programs. Each runs for at most its `seconds` argument and then
// exits, so a runner that dies cannot leave a leaker behind for long.

/** C programs, compiled with gcc at run time. argv[1] = lifetime in seconds. */
export const C_PROGRAMS = {
  // Leaker: malloc'd chunks never freed, 100 KiB every 4 s (1.5 MiB/min; below the 128 KiB mmap
  // threshold, so the heap grows by brk).
  'ms-malloc-leak': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { int secs = atoi(v[1]);
  for (int t = 0; t < secs; t++) { if (t % 4 == 0) { char *p = malloc(100 * 1024); memset(p, t, 100 * 1024); }
    sleep(1); }
  return 0; }`,
  // Leaker: anonymous mmap never unmapped, touched.
  'ms-mmap-leak': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
int main(int c, char **v) { int secs = atoi(v[1]);
  for (int t = 0; t < secs; t++) { size_t n = 48 * 1024; char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) memset(p, 1, n); sleep(1); }
  return 0; }`,
  // Leaker: threads created and never joined (each keeps an 8 MiB stack mapped, a few KiB touched).
  'ms-thread-leak': `
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static void *idle(void *a) { (void)a; for (;;) pause(); return 0; }
int main(int c, char **v) { int secs = atoi(v[1]);
  for (int t = 0; t < secs / 3; t++) { pthread_t th; pthread_create(&th, 0, idle, 0); sleep(3); }
  return 0; }`,
  // Benign: warm-up to a plateau (a cache filled at start, then stable).
  'ms-warmup': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { int secs = atoi(v[1]);
  for (int t = 0; t < 40; t++) { char *p = malloc(1 << 20); memset(p, t, 1 << 20); usleep(500000); }
  sleep(secs > 20 ? secs - 20 : 1); return 0; }`,
  // Benign: a large but stable process (384 MiB touched once).
  'ms-stable-big': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { size_t n = 384UL << 20; char *p = malloc(n); memset(p, 7, n); sleep(atoi(v[1])); return p[5] == 3; }`,
  // Benign: a spike that is freed (160 MiB held 20 s, then released).
  'ms-spike': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { int secs = atoi(v[1]); sleep(60); size_t n = 160UL << 20; char *p = malloc(n);
  memset(p, 7, n); sleep(20); free(p); sleep(secs > 80 ? secs - 80 : 1); return 0; }`,
  // Leaker: POSIX shared memory that keeps growing: a file under /dev/shm (argv[2]) held open and
  // appended to, 64 KiB per second (write(2), never mapped: no process RssShmem grows). The file
  // is removed at the end; the runner removes it too.
  'ms-shm-append': `
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { int secs = atoi(v[1]); static char buf[65536]; memset(buf, 7, sizeof buf);
  int fd = open(v[2], O_WRONLY | O_CREAT | O_APPEND, 0600); if (fd < 0) return 1;
  for (int t = 0; t < secs; t++) { if (write(fd, buf, sizeof buf) < 0) return 1; sleep(1); }
  unlink(v[2]); return 0; }`,
  // Leaker: a System V segment whose users keep touching more of it: 256 MiB, 64 KiB more
  // resident every second. IPC_RMID right after attaching, so it is freed when the process dies
  // (even by SIGKILL) and shows key 0 in /proc/sysvipc/shm, as removed-but-attached segments do.
  'ms-sysv-grow': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(int c, char **v) { int secs = atoi(v[1]); size_t n = 256UL << 20, step = 64 << 10;
  int id = shmget(IPC_PRIVATE, n, IPC_CREAT | 0600); if (id < 0) return 1;
  char *p = shmat(id, 0, 0); if (p == (void *)-1) return 1; shmctl(id, IPC_RMID, 0);
  for (int t = 0; t < secs && (size_t)(t + 1) * step <= n; t++) { memset(p + (size_t)t * step, 1, step); sleep(1); }
  return 0; }`,
  // Benign: shared memory of a fixed size rewritten in place: a 32 MiB ring file under /dev/shm
  // (argv[2]) and a 32 MiB SysV segment, both filled at start, then overwritten 1 MiB a second.
  'ms-shm-ring': `
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(int c, char **v) { int secs = atoi(v[1]); size_t n = 32UL << 20, step = 1 << 20; static char buf[1 << 20];
  int fd = open(v[2], O_RDWR | O_CREAT | O_TRUNC, 0600); if (fd < 0) return 1;
  int id = shmget(IPC_PRIVATE, n, IPC_CREAT | 0600); if (id < 0) return 1;
  char *p = shmat(id, 0, 0); if (p == (void *)-1) return 1; shmctl(id, IPC_RMID, 0);
  for (size_t o = 0; o < n; o += step) { memset(buf, 1, step); if (pwrite(fd, buf, step, o) < 0) return 1; }
  memset(p, 1, n);
  for (int t = 0; t < secs; t++) { size_t o = (t % 32) * step; memset(buf, t, step);
    if (pwrite(fd, buf, step, o) < 0) return 1; memset(p + o, t, step); sleep(1); }
  unlink(v[2]); return 0; }`,
  // Benign: short-lived process churn; each child maps 16 MiB and exits within a second.
  'ms-churn': `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int c, char **v) { int secs = atoi(v[1]);
  for (int t = 0; t < secs; t++) { pid_t p = fork();
    if (p == 0) { char *m = malloc(16 << 20); memset(m, 1, 16 << 20); usleep(700000); _exit(0); }
    waitpid(p, 0, 0); usleep(300000); }
  return 0; }`,
};

/** Leaker: a Node program retaining objects in a Map that is never pruned (~2.5 MiB/min). */
export const NODE_RETAIN = `
const keep = new Map();
let i = 0;
const end = Date.now() + Number(process.argv[2]) * 1000;
const t = setInterval(() => {
  for (let k = 0; k < 400; k++) keep.set('session-' + i++, { id: i, payload: 'x'.repeat(96) + i, at: Date.now() });
  if (Date.now() > end) clearInterval(t);
}, 1000);
`;

/** Benign: a GC sawtooth with a flat baseline (Buffers dropped and collected every 30 s). */
export const NODE_SAWTOOTH = `
let live = [];
let n = 0;
const end = Date.now() + Number(process.argv[2]) * 1000;
const t = setInterval(() => {
  live.push(Buffer.alloc(1 << 20, n++));
  if (n % 30 === 0) { live = []; global.gc(); }
  if (Date.now() > end) clearInterval(t);
}, 1000);
`;

/** Leaker: TCP connections on loopback opened and never closed (kernel socket slab grows). */
export const PY_SOCKETS = `
import socket, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (19000, 19000))
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4096)
addr = srv.getsockname(); keep = []
end = time.time() + float(sys.argv[1])
while time.time() < end and len(keep) < 16000:
    for _ in range(10):
        c = socket.create_connection(addr); s, _a = srv.accept(); keep += [c, s]
    time.sleep(1)
time.sleep(max(0, end - time.time()))
`;

/** Leaker: a file on tmpfs that keeps growing (shmem), 64 KiB per second. */
export const PY_TMPFS = `
import sys, time, os
path = sys.argv[2]; end = time.time() + float(sys.argv[1])
with open(path, 'ab') as f:
    while time.time() < end:
        f.write(os.urandom(64 * 1024)); f.flush(); time.sleep(1)
`;

/** Benign: page cache filled by reading a large file slowly (the reader's RSS stays flat). */
export const PY_PAGECACHE = `
import sys, time, os
secs = float(sys.argv[1]); path = sys.argv[2]; size = int(sys.argv[3])
chunk = 1 << 20
with open(path, 'wb') as f:
    for i in range(size // chunk): f.write(b'\\0' * 4096 * 256)
    f.flush(); os.fsync(f.fileno())
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # only this file's pages: start cold
end = time.time() + secs; off = 0
while time.time() < end:
    if off < size: os.pread(fd, chunk * 2, off); off += chunk * 2
    time.sleep(1)
`;
