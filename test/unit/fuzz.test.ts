// The fuzz targets (fuzz/), bounded: every native target built with clang
// (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer) replays its
// regression inputs and runs 20,000 inputs from its corpus; every TypeScript
// target likewise, 10,000. Long runs: npm run fuzz (fuzz/README.md).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNative, inputs, NATIVE_TARGETS, ROOT, runFuzzer } from '../../fuzz/native.js';
import { runTsTarget } from '../../fuzz/ts/target.js';
import { TS_TARGETS } from '../../fuzz/ts/targets.js';

const NATIVE_RUNS = 20_000;
const TS_RUNS = 10_000;
const dir = (kind: string, t: string) => join(ROOT, 'fuzz', kind, t);

describe('native fuzz targets', () => {
  let binaries: Record<string, string>;
  // No clang or libFuzzer fails here, loudly: CI installs them (.ci/run).
  before(async () => {
    binaries = await buildNative(Object.keys(NATIVE_TARGETS));
  });

  for (const t of Object.keys(NATIVE_TARGETS)) {
    test(t, async () => {
      const regressions = inputs(dir('regressions', t));
      if (regressions.length > 0) await runFuzzer(binaries[t]!, regressions);
      // New inputs and crashes go to a scratch folder: the checkout is not written.
      const work = mkdtempSync(join(tmpdir(), `tundra-fuzz-${t}-`));
      try {
        const r = await runFuzzer(binaries[t]!, [work, dir('corpus', t), `-runs=${NATIVE_RUNS}`, '-seed=1', `-artifact_prefix=${work}/`]);
        assert.equal(r.executions, NATIVE_RUNS);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});

describe('TypeScript fuzz targets', () => {
  for (const target of TS_TARGETS) {
    test(target.name, () => {
      const work = mkdtempSync(join(tmpdir(), `tundra-fuzz-${target.name}-`));
      try {
        const r = runTsTarget(target, {
          runs: TS_RUNS, seed: 1, corpusDir: dir('corpus', target.name), regressionsDir: dir('regressions', target.name), crashDir: work,
        });
        assert.ok(r.executions >= TS_RUNS);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});
