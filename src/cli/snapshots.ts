import { openLiveSnapshot } from '../capture/live.js';
import { openSnapshot } from '../capture/snapshot.js';
import type { Snapshot } from '../model/snapshot.js';

/** SNAPSHOT (a bundle or directory), or this machine now when it is absent. */
export async function snapshotOrLive(arg: string | undefined): Promise<Snapshot> {
  return arg === undefined ? openLiveSnapshot() : openSnapshot(arg);
}
