// What the built-in stages need of the user stages (src/stages/user-host.ts
// implements it): one call per batch and direction that may drop packets, keeping
// the order of the rest, and returns how many are left.
export interface BatchStages {
  run(direction: 'outbound' | 'inbound', data: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, peers: Int32Array, count: number): number;
}
