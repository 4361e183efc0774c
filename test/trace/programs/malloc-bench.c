/*
 * malloc-bench: a malloc-heavy loop for the `trace user` overhead bench (bench/trace).
 *
 *   malloc-bench CALLS
 *
 * Waits for a line on stdin (so a tracer can attach), then makes CALLS malloc calls of
 * 16..1039 bytes from alloc_block(), frees all but one in 64 from free_block() (the rest
 * stay, as a slow leak does), prints "done NANOSECONDS CPU_NANOSECONDS" for the loop
 * alone (wall clock, and the process's CPU time: user plus the kernel time its probe traps
 * cost) and waits until stdin closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *volatile sink;

__attribute__((noinline)) static void *alloc_block(long i)
{
	char *p = malloc(16 + (size_t)(i % 1024));
	p[0] = (char)i;
	return p;
}

__attribute__((noinline)) static void free_block(void *p)
{
	sink = p;
	free(sink);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: malloc-bench CALLS\n");
		return 2;
	}
	long n = atol(argv[1]);
	char line[64];
	struct timespec a, b, ca, cb;
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ready\n");
	if (!fgets(line, sizeof line, stdin))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	for (long i = 0; i < n; i++) {
		void *p = alloc_block(i);
		if (i % 64)
			free_block(p);
		else
			sink = p;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("done %lld %lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
	       (long long)(cb.tv_sec - ca.tv_sec) * 1000000000LL + (cb.tv_nsec - ca.tv_nsec));
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}
