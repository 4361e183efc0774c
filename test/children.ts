/** Wait (up to 10 s: the machine may be busy) until `check` holds for a child's /proc files. */
export async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if (check()) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for a child process');
}
