// Loads the C++ addon (built by node-gyp during `npm ci`). The addon is
// context-aware, so this works on the main thread and in worker threads alike.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The raw binding; typed wrappers live next to their callers. */
export interface NativeBinding {
  readonly [name: string]: unknown;
}

function load(): NativeBinding {
  // dist/src/native/addon.js -> ../../../build/Release
  return require('../../../build/Release/tundra_native.node') as NativeBinding;
}

export const native: NativeBinding = load();

/** The addon's function `name`, typed by the caller; throws at load if it is missing. */
export function nativeFunction<T>(name: string): T {
  const f = native[name];
  if (typeof f !== 'function') throw new Error(`tundra_native: missing export ${name}`);
  return f as T;
}

/** The addon's number constant `name`; throws at load if it is missing. */
export function nativeNumber(name: string): number {
  const v = native[name];
  if (typeof v !== 'number') throw new Error(`tundra_native: missing export ${name}`);
  return v;
}

/** The addon's array of names `name` (counters, drop reasons), frozen; throws at load if it is missing. */
export function nativeNames(name: string): readonly string[] {
  const v = native[name];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`tundra_native: missing export ${name}`);
  return Object.freeze((v as string[]).slice());
}

/**
 * Checks that the addon's constants are the TypeScript side's: a number each, or a
 * list of names compared in order. A mismatch would silently misplace every field or
 * counter it names, so it throws at load instead.
 */
export function expectNativeConstants(expected: readonly (readonly [string, number | readonly string[]])[]): void {
  for (const [name, want] of expected) {
    const got = native[name];
    const same = typeof want === 'number'
      ? got === want
      : Array.isArray(got) && got.length === want.length && got.every((v, i) => v === want[i]);
    if (!same) {
      const show = (v: unknown): string => (Array.isArray(v) ? v.join() : String(v));
      throw new Error(`tundra_native: ${name} is ${show(got)}, expected ${show(want)}`);
    }
  }
}
