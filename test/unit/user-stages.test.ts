// The user-stage host: parsing --stage / TUNDRA_STAGES, loading modules (and the errors
// that name them), running stages in order with drops compacted and counted, containing
// a stage that throws, and counters in shared memory summed across instances (one of
// them in a worker thread, read live through share()/attach()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseStageSpecs, UserStages, type SharedStageCounters } from '../../src/stages/user-host.js';
import { SettingError } from '../../src/errors.js';

const HOST_URL = new URL('../../src/stages/user-host.js', import.meta.url).href;

const dir = mkdtempSync(join(tmpdir(), 'tundra-user-stages-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

// Drops packets whose first byte is odd ('odd') or 0xdd ('dd'); counts calls and packets seen.
const DROPPER = fixture(
  'dropper.mjs',
  `export function createStage(init) {
    const [calls, seen] = [0, 1];
    const c = init.counters(['calls', 'seen']);
    const name = init.config || 'dropper';
    return {
      name,
      dropReasons: ['odd', 'dd'],
      outbound(batch) {
        c[calls] += 1;
        c[seen] += batch.count;
        for (let i = 0; i < batch.count; i++) {
          const b = batch.data[batch.offsets[i]];
          if (b === 0xdd) batch.drop(i, 'dd');
          else if (b & 1) batch.drop(i, 'odd');
        }
      },
    };
  }`,
);

// Records the first byte of every packet it sees (both directions) into globalThis.seen[config].
const RECORDER = fixture(
  'recorder.mjs',
  `export default async function (init) {
    await new Promise((r) => setTimeout(r, 1));
    const log = (globalThis.seen ??= {})[init.config] = [];
    const see = (batch) => { for (let i = 0; i < batch.count; i++) log.push([batch.direction, batch.data[batch.offsets[i]], batch.peers[i]]); };
    return { name: 'rec_' + init.config, outbound: see, inbound: see, close() { log.push('closed'); } };
  }`,
);

// Throws on a batch whose first packet starts with 0xee, after dropping packet 1 when it starts with 0x01.
const THROWER = fixture(
  'thrower.mjs',
  `export function createStage() {
    return {
      name: 'thrower',
      dropReasons: ['one'],
      inbound(batch) {
        if (batch.count > 1 && batch.data[batch.offsets[1]] === 0x01) batch.drop(1, 'one');
        if (batch.data[batch.offsets[0]] === 0xee) throw new Error('boom');
      },
    };
  }`,
);

const UNDECLARED = fixture(
  'undeclared.mjs',
  `export function createStage() { return { name: 'undeclared', dropReasons: ['a'], outbound(b) { b.drop(0, 'b'); } }; }`,
);
const OUT_OF_RANGE = fixture(
  'range.mjs',
  `export function createStage() { return { name: 'range', dropReasons: ['a'], outbound(b) { b.drop(b.count, 'a'); } }; }`,
);

/** A batch of one-byte-tagged packets at scattered offsets; peers[i] = 100 + i. */
function batch(tags: number[]) {
  const data = new Uint8Array(64 * (tags.length + 1));
  const offsets = new Uint32Array(tags.length + 4).fill(0xffffffff);
  const lengths = new Uint32Array(tags.length + 4).fill(0xffffffff);
  const peers = new Int32Array(tags.length + 4).fill(-7);
  tags.forEach((t, i) => {
    offsets[i] = 64 * i + (i % 3) * 5;
    lengths[i] = 10 + i;
    peers[i] = 100 + i;
    data[offsets[i]!] = t;
  });
  return { data, offsets, lengths, peers, count: tags.length };
}

function run(stages: UserStages, direction: 'outbound' | 'inbound', b: ReturnType<typeof batch>): number {
  return stages.run(direction, b.data, b.offsets, b.lengths, b.peers, b.count);
}

test('parseStageSpecs: entries, configs, escapes and the empty value', () => {
  assert.deepEqual(parseStageSpecs('', '--stage'), []);
  assert.deepEqual(parseStageSpecs('   ', 'TUNDRA_STAGES'), []);
  assert.deepEqual(parseStageSpecs('./a.js', '--stage'), [{ module: './a.js', config: undefined }]);
  assert.deepEqual(parseStageSpecs(' ./a.js=rules.json , pkg-b ,@scope/c=', 'TUNDRA_STAGES'), [
    { module: './a.js', config: 'rules.json' },
    { module: 'pkg-b', config: undefined },
    { module: '@scope/c', config: '' },
  ]);
  // Only the first '=' separates; a comma inside a config is written \, and a backslash before one \\.
  assert.deepEqual(parseStageSpecs('cap.js=dir=/tmp/x\\,maxBytes=1M\\,files=3,f.js=a\\\\,g.js=c:\\d', '--stage'), [
    { module: 'cap.js', config: 'dir=/tmp/x,maxBytes=1M,files=3' },
    { module: 'f.js', config: 'a\\' },
    { module: 'g.js', config: 'c:\\d' },
  ]);
});

test('parseStageSpecs: bad entries throw SettingError naming the source', () => {
  for (const [value, source, pattern] of [
    ['a.js,,b.js', '--stage', /^--stage: entry 2 of "a\.js,,b\.js" is empty/],
    ['a.js,', 'TUNDRA_STAGES', /^TUNDRA_STAGES: entry 2 .* is empty/],
    [',a.js', 'TUNDRA_STAGES', /^TUNDRA_STAGES: entry 1 .* is empty/],
    ['=config', '--stage', /^--stage: "=config" names no module before "="/],
    ['a.js, =x', 'TUNDRA_STAGES', /^TUNDRA_STAGES: "=x" names no module/],
  ] as const) {
    assert.throws(
      () => parseStageSpecs(value, source),
      (err: unknown) => err instanceof SettingError && pattern.test(err.message) && err.message.includes('MODULE[=CONFIG]'),
      value,
    );
  }
});

test('load errors name the module and say what to do', async () => {
  const bad = async (source: string | undefined, module: string, pattern: RegExp) => {
    const path = source === undefined ? module : fixture(module, source);
    await assert.rejects(
      UserStages.load([{ module: path, config: undefined }], 'main'),
      (err: unknown) => err instanceof Error && err.message.includes(path) && pattern.test(err.message),
      module,
    );
  };
  await bad(undefined, join(dir, 'missing.mjs'), /there is no file .*missing\.mjs .*give the path/);
  await bad(undefined, './no/such/stage.js', /there is no file .*no\/such\/stage\.js/);
  await bad(undefined, 'tundra-no-such-stage-package', /not found: .*no package "tundra-no-such-stage-package".*install the package/);
  await bad('export const x = 1;', 'noexport.mjs', /exports no createStage function/);
  await bad('export function createStage() { throw new Error("no rules"); }', 'create-throws.mjs', /createStage failed: no rules/);
  await bad('export function createStage() { return { name: "Bad-Name" }; }', 'badname.mjs', /name "Bad-Name" is not made of a-z/);
  await bad('export function createStage() { return 7; }', 'number.mjs', /returned number, not a stage object/);
  await bad('export function createStage() { return { name: "x", outbound: 1 }; }', 'notfn.mjs', /outbound is a number, not a function/);
  await bad('export function createStage() { return { name: "x", dropReasons: ["error"] }; }', 'reserved.mjs', /"error" is the host's own/);
  await bad('export function createStage() { return { name: "x", dropReasons: ["a", "a"] }; }', 'dupreason.mjs', /drop reason "a" is given twice/);
  await bad('export function createStage() { return { name: "x", dropReasons: ["A b"] }; }', 'badreason.mjs', /drop reason "A b" is not made of/);
  await bad(
    'export function createStage(i) { i.counters(["a"]); i.counters(["b"]); return { name: "x" }; }',
    'twice.mjs',
    /counters\(\) may be called only once/,
  );
  await bad('export function createStage(i) { i.counters(["ok", "No"]); return { name: "x" }; }', 'badcounter.mjs', /counter name "No"/);
  await bad('export const createStage = 1; syntax error here', 'syntax.mjs', /failed to load: /);
  await bad('export function createStage() { return { name: "x" }; }', 'stage.ts', /is TypeScript; .*compile it/);

  // Two stages of one name, and a relative path resolved against the working directory.
  const rel = relative(process.cwd(), DROPPER);
  await assert.rejects(
    UserStages.load([{ module: DROPPER, config: undefined }, { module: rel, config: undefined }], 'main'),
    /stage module .*dropper\.mjs: a stage named "dropper" is already loaded \(from .*dropper\.mjs\); stage names must be unique/,
  );
});

test('a failed load closes the stages made before it', async () => {
  await assert.rejects(
    UserStages.load([{ module: RECORDER, config: 'early' }, { module: join(dir, 'missing.mjs'), config: undefined }], 'main'),
    /missing\.mjs/,
  );
  assert.deepEqual((globalThis as { seen?: Record<string, unknown[]> }).seen?.early, ['closed']);
});

test('drops are compacted in order and counted; later stages see only what is kept', async () => {
  const stages = await UserStages.load(
    [
      { module: DROPPER, config: undefined },
      { module: RECORDER, config: 'after' },
    ],
    'main',
  );
  assert.equal(stages.size, 2);
  assert.equal(stages.has('outbound'), true);
  assert.equal(stages.has('inbound'), true);
  const tags = [2, 3, 4, 0xdd, 5, 6, 7, 7, 8, 0xdd];
  const b = batch(tags);
  const before = { offsets: b.offsets.slice(), lengths: b.lengths.slice() };
  const n = run(stages, 'outbound', b);
  const keep = tags.map((t, i) => [t, i] as const).filter(([t]) => t !== 0xdd && (t & 1) === 0).map(([, i]) => i);
  assert.equal(n, keep.length);
  assert.deepEqual(Array.from(b.offsets.subarray(0, n)), keep.map((i) => before.offsets[i]!));
  assert.deepEqual(Array.from(b.lengths.subarray(0, n)), keep.map((i) => before.lengths[i]!));
  assert.deepEqual(Array.from(b.peers.subarray(0, n)), keep.map((i) => 100 + i));
  const seen = (globalThis as unknown as { seen: Record<string, unknown[]> }).seen;
  assert.deepEqual(seen.after, keep.map((i) => ['outbound', tags[i], 100 + i]));

  // Inbound: only the recorder runs; nothing is dropped, the count is unchanged.
  const inb = batch([9, 11]);
  assert.equal(run(stages, 'inbound', inb), 2);
  assert.deepEqual(seen.after!.slice(-2), [['inbound', 9, 100], ['inbound', 11, 101]]);

  // A batch in which everything is dropped: the recorder is not called with nothing.
  const all = batch([1, 3, 0xdd]);
  const seenBefore = seen.after!.length;
  assert.equal(run(stages, 'outbound', all), 0);
  assert.equal(seen.after!.length, seenBefore);
  assert.equal(run(stages, 'outbound', batch([])), 0);

  // A batch larger than the marks the host started with.
  const big = batch(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  const bigKept = run(stages, 'outbound', big);
  const expectBig = Array.from({ length: 1000 }, (_, i) => i & 0xff).filter((t) => t !== 0xdd && (t & 1) === 0).length;
  assert.equal(bigKept, expectBig);

  const snap = stages.snapshot();
  const odd = tags.filter((t) => t !== 0xdd && t & 1).length + 2 + Array.from({ length: 1000 }, (_, i) => i & 0xff).filter((t) => t !== 0xdd && t & 1).length;
  const dd = 2 + 1 + Array.from({ length: 1000 }, (_, i) => i & 0xff).filter((t) => t === 0xdd).length;
  assert.deepEqual(snap.drops, { stage_dropper_odd: odd, stage_dropper_dd: dd, stage_dropper_error: 0, stage_rec_after_error: 0 });
  assert.deepEqual(snap.counters, { stage_dropper_calls: 3, stage_dropper_seen: tags.length + 3 + 1000 });
  stages.close();
  stages.close();
  assert.equal((seen.after as unknown[]).filter((x) => x === 'closed').length, 1, 'close() is called once');
  // After close the batches pass through untouched.
  assert.equal(run(stages, 'outbound', batch([1, 3])), 2);
});

test('no stages: size 0, has() false, run() passes the batch through', async () => {
  const stages = await UserStages.load([], 'main');
  assert.equal(stages.size, 0);
  assert.equal(stages.has('outbound'), false);
  assert.equal(stages.has('inbound'), false);
  assert.equal(run(stages, 'inbound', batch([1, 2, 3])), 3);
  assert.deepEqual(stages.snapshot(), { drops: {}, counters: {} });
});

test('a stage that throws is contained: its batch is dropped and counted, logged once, the next batches go on', async () => {
  const lines: string[] = [];
  const stages = await UserStages.load(
    [
      { module: THROWER, config: undefined },
      { module: RECORDER, config: 'behind' },
      { module: UNDECLARED, config: undefined },
      { module: OUT_OF_RANGE, config: undefined },
    ],
    'udp-0',
    (line) => lines.push(line),
  );
  const seen = (globalThis as unknown as { seen: Record<string, unknown[]> }).seen;
  // Throws after dropping packet 1 itself: 1 counted as 'one', the other 3 as error.
  assert.equal(run(stages, 'inbound', batch([0xee, 0x01, 4, 5])), 0);
  assert.deepEqual(seen.behind, [], 'the stages after a throwing one do not see its batch');
  assert.equal(run(stages, 'inbound', batch([0xee, 9])), 0);
  // It goes on with the next batches.
  assert.equal(run(stages, 'inbound', batch([2, 0x01, 3])), 2);
  assert.deepEqual(seen.behind, [['inbound', 2, 100], ['inbound', 3, 102]]);
  // drop() with an undeclared reason or an index out of range is a throw of that stage.
  assert.equal(run(stages, 'outbound', batch([2, 4])), 0);
  assert.deepEqual(stages.snapshot().drops, {
    stage_thrower_one: 2,
    stage_thrower_error: 5,
    stage_rec_behind_error: 0,
    stage_undeclared_a: 0,
    stage_undeclared_error: 2,
    stage_range_a: 0,
    stage_range_error: 0,
  });
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /^stage thrower \(.*thrower\.mjs\) on udp-0 threw on an inbound batch: boom; .*stage_thrower_error \(logged once\)$/);
  assert.match(lines[1]!, /stage undeclared .* drop reason "b" is not in its dropReasons/);
  stages.close();

  // The out-of-range drop on its own (the undeclared stage before it would drop the batch first).
  const range = await UserStages.load([{ module: OUT_OF_RANGE, config: undefined }], 'main', (line) => lines.push(line));
  assert.equal(run(range, 'outbound', batch([2, 4, 6])), 0);
  assert.deepEqual(range.snapshot().drops, { stage_range_a: 0, stage_range_error: 3 });
  assert.match(lines[2]!, /drop\(3\) is outside the batch \[0, 3\)/);
});

test('counters are summed across two instances, one in a worker thread, through share()/attach()', async () => {
  const main = await UserStages.load([{ module: DROPPER, config: undefined }], 'main');
  assert.equal(run(main, 'outbound', batch([1, 2, 0xdd])), 1);

  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { UserStages } = await import(workerData.host);
      const stages = await UserStages.load([{ module: workerData.module, config: undefined }], 'tun-1');
      const tags = [3, 5, 6, 8, 0xdd];
      const data = new Uint8Array(tags.length * 16);
      const offsets = new Uint32Array(tags.length), lengths = new Uint32Array(tags.length), peers = new Int32Array(tags.length);
      const fill = () => tags.forEach((t, i) => { offsets[i] = 16 * i; lengths[i] = 16; data[16 * i] = t; });
      fill();
      stages.run('outbound', data, offsets, lengths, peers, tags.length);
      parentPort.postMessage(stages.share());
      parentPort.on('message', () => {
        fill();
        stages.run('outbound', data, offsets, lengths, peers, tags.length);
        parentPort.postMessage('ran');
        parentPort.close();
      });
    })();`,
    { eval: true, workerData: { host: HOST_URL, module: DROPPER } },
  );
  try {
    const next = () =>
      new Promise<unknown>((resolve, reject) => {
        // A bound for a hang, not a speed: a worker starts slowly on a busy machine.
        const timer = setTimeout(() => reject(new Error('the worker did not answer within 60 s')), 60_000);
        worker.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        worker.once('error', reject);
      });
    const shared = (await next()) as SharedStageCounters;
    assert.equal(shared.thread, 'tun-1');
    main.attach(shared);
    const expect = (k: number) => ({
      drops: { stage_dropper_odd: 1 + 2 * k, stage_dropper_dd: 1 + k, stage_dropper_error: 0 },
      counters: { stage_dropper_calls: 1 + k, stage_dropper_seen: 3 + 5 * k },
    });
    assert.deepEqual(main.snapshot(), expect(1));
    assert.deepEqual(UserStages.snapshotOf([main.share(), shared]), expect(1));
    assert.deepEqual(UserStages.snapshotOf([shared]).counters, { stage_dropper_calls: 1, stage_dropper_seen: 5 });
    // The worker runs again: the main thread sees it through the shared memory, with no new message of counters.
    worker.postMessage('again');
    assert.equal(await next(), 'ran');
    assert.deepEqual(main.snapshot(), expect(2));
  } finally {
    await worker.terminate();
    main.close();
  }
});
