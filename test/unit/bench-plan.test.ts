// bench/e2e/plan.ts and impls.ts: what a command line asks the end-to-end runner to measure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImpl, TUNDRA_MAIN } from '../../bench/e2e/impls.js';
import { parsePlan, steps, UsageError, type Plan } from '../../bench/e2e/plan.js';

const plan = (argv: string[], env: NodeJS.ProcessEnv = {}): Plan => {
  const p = parsePlan(argv, env);
  assert.notEqual(p, 'help');
  return p as Plan;
};

test('the short run: p2p, tundra and wireguard-go, TCP and UDP, 3 rounds of 5 s, ratios to wireguard-go', () => {
  const p = plan([]);
  assert.deepEqual([p.topologies, p.impls.map((i) => i.label), p.loads, p.rounds, p.seconds, p.reference],
    [['p2p'], ['tundra', 'wireguard-go'], ['tcp1', 'tcp4', 'udp'], 3, 5, 'wireguard-go']);
});

test('--full: every topology and load; upstream wireguard-go only when its binary is named', () => {
  const p = plan(['--full']);
  assert.deepEqual(p.topologies, ['p2p', 'router', 'router-tuned', 'exit-node']);
  assert.deepEqual(p.loads, ['tcp1', 'tcp4', 'udp', 'udp-gso', 'secnetperf', 'latency']);
  assert.deepEqual(p.impls.map((i) => i.label), ['tundra', 'tundra-nooffload', 'wireguard-go', 'kernel']);
  const up = plan(['--full'], { TUNDRA_UPSTREAM_WIREGUARD_GO: '/opt/wg-go' });
  assert.deepEqual(up.impls.find((i) => i.label === 'wireguard-go-upstream')?.argv, ['/opt/wg-go', '-f', '%IF%']);
  assert.deepEqual(up.impls.find((i) => i.label === 'tundra-nooffload')?.env, { TUNDRA_OFFLOAD: 'none' });
});

test('--impl NAME=COMMAND: env words, %IF%, and `tundra` as this checkout\'s tundra', () => {
  assert.deepEqual(parseImpl('tundra-q2=env TUNDRA_QUEUES=2 TUNDRA_CRYPTO=node tundra -f %IF%', {}), {
    label: 'tundra-q2', kind: 'userspace', argv: [process.execPath, TUNDRA_MAIN, '-f', '%IF%'], env: { TUNDRA_QUEUES: '2', TUNDRA_CRYPTO: 'node' },
  });
  assert.deepEqual(parseImpl('boring=boringtun-cli --foreground %IF%', {}).argv, ['boringtun-cli', '--foreground', '%IF%']);
  assert.equal(parseImpl('kernel', {}).kind, 'kernel');
});

test('bad command lines are refused, naming the flag and what would do', () => {
  const refused: [string[], RegExp][] = [
    [['--topology', 'moon'], /^--topology: moon is not one of p2p, router, router-tuned, exit-node$/],
    [['--load', ''], /^--load: empty list/],
    [['--rounds', '0'], /^--rounds 0: a whole number from 1 to 100$/],
    [['--seconds', '2.5'], /^--seconds 2\.5: a whole number/],
    [['--impl', 'wg=wireguard-go -f'], /the command has no %IF%/],
    [['--impl', 'bad name=x %IF%'], /the name must be/],
    [['--impl', 'wireguard'], /not a built-in implementation \(tundra, tundra-nooffload, wireguard-go, wireguard-go-upstream, kernel\)/],
    [['--impl', 'wireguard-go-upstream'], /name its binary with TUNDRA_UPSTREAM_WIREGUARD_GO=PATH/],
    [['--impl', 'tundra', '--impl', 'tundra'], /tundra is given twice/],
    [['--impl', 'tundra', '--reference', 'wireguard-go'], /--reference wireguard-go: not one of the implementations \(tundra\)/],
    [['--fast'], /Unknown option '--fast'/],
  ];
  for (const [argv, message] of refused) {
    assert.throws(() => parsePlan(argv, {}), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
  assert.equal(parsePlan(['--help'], {}), 'help');
});

test('steps interleave the implementations within each round: A B A B, not A A B B', () => {
  const order = steps(plan(['--topology', 'p2p,router', '--rounds', '2'])).map((s) => `${s.round}${s.topology}:${s.impl.label}`);
  assert.deepEqual(order, [
    '1p2p:tundra', '1p2p:wireguard-go', '1router:tundra', '1router:wireguard-go',
    '2p2p:tundra', '2p2p:wireguard-go', '2router:tundra', '2router:wireguard-go',
  ]);
});
