/*
 * A herd of sleeping processes of varied size for the process-count bench (bench/processes):
 *
 *   herd N SEED
 *
 * forks N children. Child i (a deterministic pseudo-random draw from SEED) maps between 1 and
 * 200 separate anonymous regions (a PROT_NONE guard page between them keeps the kernel from
 * merging them into one VMA), touches 16 KiB to 8 MiB of them (log-uniform), and about one in
 * eight also shares its pages with a forked grandchild (Pss below Rss), one in ten maps a
 * 256 KiB to 4 MiB shared anonymous (shmem) region, and one in twenty maps a file of the bench's
 * work directory MAP_SHARED. Then every process sleeps in pause(). When all are ready the herd
 * prints "ready N" (the number of processes it made, grandchildren included) and sleeps too.
 * Every process is in the herd's process group: the bench ends them all with kill(-pgid).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static uint64_t rng;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double uniform(void) { return (double)(next() >> 11) / 9007199254740992.0; }

static void touch(char *p, size_t n) {
  for (size_t i = 0; i < n; i += 4096) p[i] = (char)i;
}

static void child(int i, const char *file, int ready) {
  long page = sysconf(_SC_PAGESIZE);
  int regions = 1 + (int)(uniform() * uniform() * 200);
  double lo = 14, hi = 23; /* 16 KiB .. 8 MiB */
  size_t bytes = (size_t)1 << (int)(lo + uniform() * (hi - lo));
  size_t per = (bytes / regions + page - 1) / page * page;
  for (int r = 0; r < regions; r++) {
    char *p = mmap(NULL, per + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    mprotect(p + per, page, PROT_NONE);
    touch(p, per);
  }
  if (i % 10 == 3) {
    size_t n = (size_t)(256 << 10) << (int)(uniform() * 5);
    char *s = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s != MAP_FAILED) touch(s, n);
  }
  if (i % 20 == 7) {
    int fd = open(file, O_RDONLY);
    if (fd >= 0) {
      char *f = mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
      if (f != MAP_FAILED) {
        volatile char sum = 0;
        for (int k = 0; k < (1 << 20); k += 4096) sum += f[k];
      }
      close(fd);
    }
  }
  char name[16];
  snprintf(name, sizeof name, "ms-herd-%d", i % 100000);
  prctl(PR_SET_NAME, name);
  if (i % 8 == 5 && fork() == 0) prctl(PR_SET_NAME, "ms-herd-twin");
  /* One byte per process (the twin too): the herd counts them. */
  char c = 1;
  if (write(ready, &c, 1) < 0) _exit(1);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: herd N SEED FILE\n");
    return 2;
  }
  setpgid(0, 0); /* one group: the bench ends every process with kill(-herd) */
  int n = atoi(argv[1]);
  rng = strtoull(argv[2], NULL, 10) * 2654435761u + 88172645463325252ull;
  int fds[2];
  if (pipe(fds) < 0) return 1;
  int started = 0, twins = 0;
  for (int i = 0; i < n; i++) {
    (void)next();
    pid_t p = fork();
    if (p < 0) {
      perror("fork");
      break;
    }
    if (p == 0) {
      close(fds[0]);
      child(i, argv[3], fds[1]);
      _exit(0);
    }
    started++;
    if (i % 8 == 5) twins++;
  }
  close(fds[1]);
  int made = 0;
  for (;;) {
    char c;
    ssize_t r = read(fds[0], &c, 1);
    if (r <= 0) break;
    made++;
    if (made >= started + twins) break;
  }
  printf("ready %d\n", made);
  fflush(stdout);
  for (;;) pause();
}
