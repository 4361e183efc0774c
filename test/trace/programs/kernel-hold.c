/*
 * kernel-hold: makes the kernel allocate and keep objects, for `memsleuth trace kernel`
 * tests and the bench.
 *
 *   kernel-hold PIPES
 *
 * Waits for a line on stdin (so the tracer is attached first), then creates PIPES pipes
 * and keeps both ends open: per pipe the kernel holds a pipe_inode_info (kmalloc in
 * alloc_pipe_info), its buffer array, two struct files (filp cache, alloc_empty_file),
 * an inode and a dentry. Prints "done PIPES" and waits until stdin closes.
 *
 *   gcc -O1 -g -o kernel-hold kernel-hold.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: kernel-hold PIPES\n");
		return 2;
	}
	long n = atol(argv[1]);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || (long)rl.rlim_cur < 2 * n + 16) {
		fprintf(stderr, "kernel-hold: need %ld open files, the limit is %ld\n", 2 * n + 16, (long)rl.rlim_cur);
		return 1;
	}
	char line[64];
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ready\n");
	if (!fgets(line, sizeof line, stdin))
		return 1;
	for (long i = 0; i < n; i++) {
		int fds[2];
		if (pipe(fds) != 0) {
			perror("pipe");
			return 1;
		}
	}
	printf("done %ld\n", n);
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}
