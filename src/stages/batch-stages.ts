// What the built-in stages need of the user stages (src/stages/user-host.ts
// implements it): one call per batch and direction that may drop packets, keeping
// the order of the rest, and returns how many are left.
import type { Direction } from './user-stage.js';

export interface BatchStages {
  run(direction: Direction, data: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, peers: Int32Array, count: number): number;
}
