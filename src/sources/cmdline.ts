/**
 * /proc/PID/cmdline: argv separated and terminated by NUL. Kernel threads and zombies have an
 * empty cmdline. A process that rewrote its argv (setproctitle) may have no NUL at all; its text
 * is then one argument. Any byte sequence is valid, so this parser never throws.
 */
export function parseCmdline(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\0');
  // The terminating NUL leaves one empty string at the end.
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}
