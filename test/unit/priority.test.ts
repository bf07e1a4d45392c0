// The data path's thread priority (src/dataplane/priority.ts): a thread sets its own
// nice value and no other thread's; usableNice tells whether the process may take a
// raised one without keeping it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { usableNice } from '../../src/dataplane/priority.js';
import { Logger } from '../../src/log.js';

const PRIORITY = new URL('../../src/dataplane/priority.js', import.meta.url).href;
const root = process.getuid?.() === 0;

/** The nice value a new worker thread reads after setThreadNice(nice). */
function niceInWorker(nice: number): Promise<number> {
  const code = `import { setThreadNice } from '${PRIORITY}'; import { getPriority } from 'node:os'; import { parentPort } from 'node:worker_threads';
    setThreadNice(${nice}); parentPort.postMessage(getPriority(0));`;
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { type: 'module' } as never);
    w.once('message', (n: number) => {
      void w.terminate();
      resolve(n);
    });
    w.once('error', reject);
  });
}

test('setThreadNice sets the calling thread\'s nice value only', async () => {
  const own = getPriority(0);
  assert.equal(await niceInWorker(Math.min(19, own + 3)), Math.min(19, own + 3), 'a lower priority needs no privilege');
  assert.equal(getPriority(0), own, 'the main thread keeps its own');
});

test('a raised priority where the process may take it (root)', { skip: !root && 'needs root (CAP_SYS_NICE)' }, async () => {
  const own = getPriority(0);
  assert.equal(usableNice(-10, new Logger('test', 'silent')), -10);
  assert.equal(getPriority(0), own, 'usableNice tried it and undid it');
  assert.equal(await niceInWorker(-10), -10);
  assert.equal(getPriority(0), own);
});

test('without CAP_SYS_NICE the data path keeps its priority, and says why', { skip: (!root || !existsSync('/usr/bin/setpriv')) && 'needs root and setpriv (util-linux)' }, () => {
  const code = `import { usableNice } from '${PRIORITY}'; import { Logger } from '${new URL('../../src/log.js', import.meta.url).href}';
    console.log(usableNice(-10, new Logger('tdrtest', 'error')));`;
  const r = spawnSync('/usr/bin/setpriv', ['--bounding-set', '-sys_nice', '--inh-caps', '-sys_nice', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.at(-1), String(getPriority(0)), 'the thread\'s own value');
  assert.match(lines[0] ?? '', /^WARNING: .*--nice: the data path stays at nice -?\d+: nice -10 was refused .*CAP_SYS_NICE/);
});
