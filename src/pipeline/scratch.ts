// Carves typed arrays out of one SharedArrayBuffer, so a stage's per-batch scratch
// (descriptors, groups, tallies) can be handed to another thread whole and seen
// there as the same arrays: the thread that prepares a batch, the one that seals
// it and the one that sends it all work on one copy.
type ArrayKind = Int32ArrayConstructor | Uint32ArrayConstructor | Float64ArrayConstructor | Uint8ArrayConstructor;
export type ScratchSpec = Readonly<Record<string, readonly [ArrayKind, number]>>;
export type ScratchArrays<S extends ScratchSpec> = { readonly [K in keyof S]: InstanceType<S[K][0]> };

/**
 * Typed arrays laid out one after another, as `spec` lists them (the same spec gives
 * the same layout in every thread), in `buffer` or in a new one.
 */
export function carveScratch<S extends ScratchSpec>(spec: S, buffer?: SharedArrayBuffer): { buffer: SharedArrayBuffer; arrays: ScratchArrays<S> } {
  const places: [string, ArrayKind, number, number][] = [];
  let offset = 0;
  for (const [name, [kind, length]] of Object.entries(spec)) {
    const size = kind.BYTES_PER_ELEMENT;
    offset = Math.ceil(offset / size) * size;
    places.push([name, kind, offset, length]);
    offset += length * size;
  }
  const sab = buffer ?? new SharedArrayBuffer(Math.max(8, offset));
  if (sab.byteLength < offset) throw new RangeError(`scratch buffer of ${sab.byteLength} bytes is smaller than its layout (${offset})`);
  const arrays: Record<string, unknown> = {};
  for (const [name, kind, at, length] of places) {
    arrays[name] = new (kind as unknown as new (b: ArrayBufferLike, at: number, length: number) => unknown)(sab, at, length);
  }
  return { buffer: sab, arrays: arrays as ScratchArrays<S> };
}
