// A user stage for the worker-crash test (--stage crash-stage.js=MARKER). When the file
// MARKER appears it reads a count K from it and deletes it; K outbound packets later
// it ends its thread in the middle of a batch, as a crash would. process.exit() in a
// worker thread ends only that worker; on the main thread it would end tundra, so
// the stage refuses to load there.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { Stage, StageInit } from '../../src/stages/user-stage.js';

export const CRASH_EXIT_CODE = 70;

export function createStage(init: StageInit): Stage {
  if (isMainThread) throw new Error('crash-stage ends its thread: load it on a queue worker (TUNDRA_QUEUES >= 1)');
  const marker = init.config ?? '';
  let left = -1;
  return {
    name: 'crash',
    outbound(batch) {
      if (left < 0 && existsSync(marker)) {
        left = Number(readFileSync(marker, 'utf8'));
        unlinkSync(marker);
      }
      if (left < 0) return;
      left -= batch.count;
      if (left <= 0) process.exit(CRASH_EXIT_CODE);
    },
  };
}
