// The soak's judgement (bench/soak/report.ts) and command line (plan.ts), on made-up
// samples: a transfer that differs, a corrupt datagram, keys that did not rotate, or a
// daemon that grew after the warm-up each fail the run; passing peaks do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSoakPlan, type SoakPlan } from '../../bench/soak/plan.js';
import { growth, soakMarkdown, verdict, type Proc, type Sample, type SoakResult } from '../../bench/soak/report.js';

const MiB = 2 ** 20;
const PLAN = parseSoakPlan(['--minutes', '2', '--warmup-seconds', '30']) as SoakPlan;

const proc = (over: Partial<Proc> = {}): Proc => ({
  rssBytes: 80 * MiB, fds: 30, threads: 12, handles: 4, initiated: 1, answered: 0, handshakeFailures: 0, drops: 0, tunDrops: 0, udpRcvbufErrors: 0, ...over,
});

/** 13 samples 10 s apart; handshakes every 5 s on a; `b` shapes daemon b at sample i. */
function result(b: (i: number) => Partial<Proc> = () => ({})): SoakResult {
  const samples: Sample[] = Array.from({ length: 13 }, (_, i) => ({ t: i * 10, a: proc({ initiated: 1 + 2 * i }), b: proc({ answered: 1 + 2 * i, ...b(i) }) }));
  return {
    plan: PLAN, command: 'npm run bench:soak', runId: 'abcd', started: '2026-01-01T00:00:00.000Z', host: '2 CPUs', samples, errors: [],
    directions: ['a → b', 'b → a'].map((label) => ({
      label, tcpSent: 40, tcpReceived: 40, tcpBytes: 40 * 16 * MiB, tcpMismatched: [], udp: { sent: 1000, received: 990, corrupt: 0, duplicates: 0 },
    })),
  };
}

test('growth after the warm-up is the rise of the floor: a passing peak is not growth, a leak is', () => {
  assert.equal(growth([]), undefined);
  assert.equal(growth([5]), undefined);
  assert.equal(growth([10, 12]), 2);
  assert.equal(growth([10, 30, 10, 11, 10, 10]), 0, 'one peak');
  assert.equal(growth([10, 11, 12, 13, 14, 15, 16]), 4);
  assert.equal(growth([30, 30, 31, 30, 29, 30]), -1);
});

test('a clean run passes; its report has the verdict and the tables', () => {
  const r = result();
  assert.deepEqual(verdict(r), { correct: true, flat: true, reasons: [] });
  const md = soakMarkdown(r);
  assert.match(md, /^\*\*Verdict: PASS\*\* — every transfer byte-exact, keys rotated; daemons flat/m);
  assert.match(md, /^\| a → b \| 40 \/ 40 \| 671,088,640 \| 0 \| 1,000 \/ 990 \(10\) \| 0 \| 0 \|$/m);
  assert.match(md, /^Handshakes completed during the run: 24 \(at least 12 expected\)\./m);
  assert.match(md, /^\| b \| RSS \| 80\.0 MiB \| 80\.0 MiB \| 80\.0 MiB \| 80\.0 MiB \| 0\.0 MiB \| 10\.0 MiB \|$/m);
  assert.match(md, /^\| b \| open fds \| 30 \| 30 \| 30 \| 30 \| 0 \| 0 \|$/m);
});

test('a transfer that differs, a corrupt datagram, an error or too few rotations fail the run', () => {
  const mismatch = result();
  mismatch.directions[1]!.tcpMismatched = [7];
  assert.deepEqual(verdict(mismatch).reasons, ['b → a: 1 TCP transfer(s) differ or never arrived (ids 7)']);
  assert.match(soakMarkdown(mismatch), /^\*\*Verdict: FAIL\*\* — transfers or rotation FAILED/m);
  const corrupt = result();
  corrupt.directions[0]!.udp!.corrupt = 2;
  assert.deepEqual(verdict(corrupt).reasons, ['a → b: 2 corrupt UDP datagram(s)']);
  const broken = result();
  broken.errors.push('tcp-a-to-b: exited 1');
  assert.equal(verdict(broken).correct, false);
  const still = result();
  for (const s of still.samples) s.a.initiated = 1;
  assert.deepEqual(verdict(still).reasons, ['keys rotated 0 times; a 120 s run with a rekey every 5 s should see at least 12']);
});

test('growth after the warm-up past a bound fails the run: RSS by more than the bound, fds, threads or handles at all', () => {
  // Before the warm-up ends (30 s), anything goes.
  assert.equal(verdict(result((i) => (i < 3 ? { rssBytes: 200 * MiB, fds: 90, threads: 40 } : {}))).flat, true);
  assert.equal(verdict(result((i) => ({ rssBytes: (80 + i) * MiB }))).flat, true, 'RSS within 10 MiB');
  const rss = verdict(result((i) => ({ rssBytes: (80 + 2 * i) * MiB })));
  assert.deepEqual(rss, { correct: true, flat: false, reasons: ['daemon b: RSS grew by 14.0 MiB after the warm-up (bound 10.0 MiB)'] });
  const fds = verdict(result((i) => ({ fds: i >= 10 ? 31 : 30 })));
  assert.deepEqual(fds.reasons, ['daemon b: open fds grew by 1 after the warm-up (bound 0)']);
  assert.equal(verdict(result((i) => ({ handles: i === 8 ? 9 : 4 }))).flat, true, 'a passing handle');
  assert.equal(verdict(result((i) => ({ threads: i >= 10 ? 13 : 12 }))).flat, false);
});

test('the command line: defaults, limits, and a warm-up shorter than the run', () => {
  assert.deepEqual(parseSoakPlan([]), {
    seconds: 600, rekeySeconds: 5, tcpMbits: 100, transferBytes: 16 * MiB, udpMbits: 5, sampleSeconds: 10, warmupSeconds: 60, rssBoundBytes: 10 * MiB, out: undefined,
  });
  assert.equal(parseSoakPlan(['--help']), 'help');
  assert.throws(() => parseSoakPlan(['--rekey-seconds', '2']), /--rekey-seconds 2: a whole number from 5 to 120/);
  assert.throws(() => parseSoakPlan(['--minutes', '1', '--warmup-seconds', '60']), /--warmup-seconds 60: must be shorter than the run \(60 s\)/);
  assert.throws(() => parseSoakPlan(['--tcp-mbits', 'fast']), /--tcp-mbits fast: a number from 1 to 10000/);
  assert.throws(() => parseSoakPlan(['--frobnicate']), /Unknown option '--frobnicate'/);
});
