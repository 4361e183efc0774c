// Writes `memsleuth --help` to dist/cli/help.txt from the command list (dist/cli/main.js
// globalHelp): bin/memsleuth.js prints it without loading the CLI's ES modules. Part of
// `npm run build`, after tsc.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { globalHelp } = await import(join(root, 'dist', 'cli', 'main.js'));
writeFileSync(join(root, 'dist', 'cli', 'help.txt'), globalHelp());
