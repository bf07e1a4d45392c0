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
