// SPDX-License-Identifier: MIT
/*
 * msl_hog: the lab's user-space memory hog for the OOM boot (lab/oom.ts). Built on
 * the host with `gcc -static` and run in the busybox guest.
 *
 *   msl_hog             allocate and touch 1 MiB chunks until the OOM killer kills it
 *   msl_hog N           stop after N MiB and exit 0 (the OOM killer came first if it fails)
 *   msl_hog N hold      allocate N MiB, then sleep until killed (a bystander)
 *
 * Every page is written so it is really resident (anon-rss), not just reserved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1UL << 20)

int main(int argc, char **argv)
{
	unsigned long limit = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	int hold = argc > 2 && strcmp(argv[2], "hold") == 0;
	unsigned long mib;

	for (mib = 0; limit == 0 || mib < limit; mib++) {
		char *p = malloc(CHUNK);

		if (!p) {
			fprintf(stderr, "msl_hog: malloc failed after %lu MiB\n", mib);
			return 1;
		}
		memset(p, 0x6d, CHUNK);
		if (mib % 64 == 0)
			fprintf(stderr, "msl_hog: %lu MiB\n", mib);
	}
	fprintf(stderr, "msl_hog: holding %lu MiB\n", mib);
	while (hold)
		pause();
	return 0;
}
