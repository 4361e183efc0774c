/*
 * user-leak: a known user-space leak for `memsleuth trace user` tests and the bench.
 *
 *   user-leak RECORDS SIZE [CHURN]
 *
 * Waits for a line on stdin (so the tracer is attached first), then:
 *   leak_records()    mallocs RECORDS blocks of SIZE bytes and keeps them in a table
 *   release_records() frees every other block (the even ones): RECORDS/2 stay allocated
 *   balanced_churn()  mallocs and frees CHURN blocks of 64..4159 bytes (never a leak)
 * prints "done OUTSTANDING_BYTES" and sleeps until stdin closes.
 *
 * Built with frame pointers and no inlining so each function is a real frame:
 *   gcc -O1 -g -fno-omit-frame-pointer -fno-inline -o user-leak user-leak.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void **table;
/* The churn's blocks pass through here, so the compiler cannot drop the malloc/free pairs. */
void *volatile sink;

__attribute__((noinline)) static void leak_records(long n, size_t size)
{
	table = calloc((size_t)n, sizeof(void *));
	for (long i = 0; i < n; i++) {
		table[i] = malloc(size);
		memset(table[i], 0x6d, size);
	}
}

__attribute__((noinline)) static void release_records(long n)
{
	for (long i = 0; i < n; i += 2) {
		free(table[i]);
		table[i] = NULL;
	}
}

__attribute__((noinline)) static void balanced_churn(long n)
{
	for (long i = 0; i < n; i++) {
		char *p = malloc(64 + (size_t)(i % 4096));
		p[0] = (char)i;
		sink = p;
		free(sink);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: user-leak RECORDS SIZE [CHURN]\n");
		return 2;
	}
	long n = atol(argv[1]);
	size_t size = (size_t)atol(argv[2]);
	long churn = argc > 3 ? atol(argv[3]) : 0;
	char line[64];
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ready\n");
	if (!fgets(line, sizeof line, stdin))
		return 1;
	leak_records(n, size);
	release_records(n);
	balanced_churn(churn);
	printf("done %ld\n", (long)(n / 2) * (long)size + n * (long)sizeof(void *));
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}
