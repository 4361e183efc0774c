#!/usr/bin/env -S node --no-concurrent-recompilation --single-threaded-gc
// --no-concurrent-recompilation: V8 optimizes hot functions on this thread, not on helper
// threads whose malloc arenas keep the compiler's memory: page-owner top at 120,828 stacks
// peaked 3-4 MB lower, the default sort of a 1 GiB dump 9 MB lower, in the same time.
// Benchmarks run node with the flags of this line (bench/cli.mjs).
import { runMain } from '../dist/cli/main.js';

await runMain();
