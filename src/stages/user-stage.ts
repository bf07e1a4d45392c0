// The contract between tundra and a user stage: the types a stage module is written
// against. A stage is loaded with `--stage MODULE[=CONFIG]` (or TUNDRA_STAGES) and runs
// on every batch of its direction where a peer's packets are already in order:
//   outbound: plaintext IP packets read from the TUN, after routing (each packet's
//             peer is known), before sealing;
//   inbound:  plaintext IP packets after decryption, replay and source checks,
//             before GRO coalescing and the TUN write.
// The rules a stage must keep are written out in examples/README.md; this file holds
// only types, so a stage can `import type` it without loading any of tundra.

export type Direction = 'outbound' | 'inbound';

/**
 * One call's view of a batch. The object and its arrays are the host's and are reused
 * for the next call: read them during the call only.
 */
export interface StageBatch {
  readonly direction: Direction;
  /** Shared arena; packet i is data[offsets[i], offsets[i] + lengths[i]). Bytes inside a packet may be rewritten in place. */
  readonly data: Uint8Array;
  /** Read-only for the stage. */
  readonly offsets: Uint32Array;
  /** Read-only for the stage. */
  readonly lengths: Uint32Array;
  /** A small number per peer, stable while the peer exists (-1: none). Read-only for the stage. */
  readonly peers: Int32Array;
  /** Packets [0, count) are this call's; entries past count are not. */
  readonly count: number;
  /**
   * Drops packet i (0 <= i < count). `reason` must be one the stage declared in
   * `dropReasons`; it is counted as drops{reason: `stage_<stage>_<reason>`}. A second
   * drop of the same packet in the same call changes nothing (the first reason counts).
   * An undeclared reason or an index out of range throws, which the host treats as
   * the stage throwing.
   */
  drop(i: number, reason: string): void;
}

export interface StageInit {
  /** The text after '=' in the spec, if any ('' for `MODULE=`). */
  readonly config: string | undefined;
  /** The thread this instance runs on, 'queue-0', 'queue-1', … ('main' in the inline mode): use it to name per-instance files. */
  readonly thread: string;
  /**
   * Shared-memory counters for this instance, one per name ([a-z0-9_]+, no repeats),
   * all 0 at first; write with `+=`. The host reports them as `stage_<stage>_<name>`,
   * summed over the instances of every thread. Call at most once, during createStage.
   */
  counters(names: readonly string[]): Float64Array;
}

export interface Stage {
  /** [a-z0-9_]+, used in counter names; unique among the stages loaded. */
  readonly name: string;
  /** The reasons `drop()` accepts, each [a-z0-9_]+ ('error' is the host's own). */
  readonly dropReasons?: readonly string[];
  /** Runs synchronously on each outbound batch; absent = the stage does not see outbound. */
  outbound?(batch: StageBatch): void;
  /** Runs synchronously on each inbound batch; absent = the stage does not see inbound. */
  inbound?(batch: StageBatch): void;
  /** Flushes files etc.; called once when the device closes. */
  close?(): void;
}

/**
 * What a stage module exports: `export function createStage(init: StageInit): Stage | Promise<Stage>`
 * (the named export createStage, or the default export).
 */
export type CreateStage = (init: StageInit) => Stage | Promise<Stage>;
