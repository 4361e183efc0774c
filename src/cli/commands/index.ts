import type { CommandSpec } from '../command.js';
import { allocinfoCommands } from './allocinfo.js';
import { collectorCommand } from './collector.js';
import { diffCommand } from './diff.js';
import { exporterCommand } from './exporter.js';
import { fleetCommand } from './fleet.js';
import { kmemleakCommands } from './kmemleak.js';
import { leaksCommand } from './leaks.js';
import { oomCommand } from './oom.js';
import { pageOwnerCommands } from './page-owner.js';
import { processCommands } from './processes.js';
import { recordCommand } from './record.js';
import { reportCommand } from './report.js';
import { seriesCommand } from './series.js';
import { serveCommand } from './serve.js';
import { slabCommands } from './slab.js';
import { snapshotCommand } from './snapshot.js';
import { symbolizeCommand } from './symbolize.js';
import { vmallocCommands } from './vmalloc.js';

/**
 * Every command, in help order. Each lives in its own file in this folder; add one
 * line here per command.
 */
// biome-ignore lint/suspicious/noExplicitAny: commands have heterogeneous option tables
export const COMMANDS: CommandSpec<any>[] = [
  reportCommand,
  snapshotCommand,
  ...processCommands,
  collectorCommand,
  recordCommand,
  leaksCommand,
  seriesCommand,
  exporterCommand,
  fleetCommand,
  ...pageOwnerCommands,
  ...slabCommands,
  ...kmemleakCommands,
  ...vmallocCommands,
  ...allocinfoCommands,
  diffCommand,
  symbolizeCommand,
  oomCommand,
  serveCommand,
];
