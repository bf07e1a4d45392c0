// What a soak found, its verdict and its Markdown report: pure functions of the samples
// and transfer counts that bench/soak/run.ts collects.
import type { SoakPlan } from './plan.js';

/** One daemon at one moment. */
export interface Proc {
  rssBytes: number;
  fds: number;
  threads: number;
  /** libuv handles of its main thread (prom-client's nodejs_active_handles_total). */
  handles: number;
  /** Handshakes it completed as initiator (responses received) and as responder (responses sent). */
  initiated: number;
  answered: number;
  handshakeFailures: number;
  /** Packets it dropped, every reason, its socket's receive queue overflows included. */
  drops: number;
  /** Packets the kernel dropped at its TUN before it read them (a full queue: the daemon short of CPU). */
  tunDrops: number;
  /** UDP datagrams its network namespace dropped for a full receive buffer (any socket: its own, a UDP sink's). */
  udpRcvbufErrors: number;
}

export interface Sample {
  /** Seconds since the traffic started. */
  t: number;
  a: Proc;
  b: Proc;
}

export interface Direction {
  label: string;
  /** TCP transfers the source completed, the sink received, their bytes, and ids whose hash or size differed or never arrived. */
  tcpSent: number;
  tcpReceived: number;
  tcpBytes: number;
  tcpMismatched: number[];
  udp?: { sent: number; received: number; corrupt: number; duplicates: number };
}

export interface SoakResult {
  plan: SoakPlan;
  command: string;
  runId: string;
  started: string;
  host: string;
  samples: Sample[];
  directions: Direction[];
  /** What broke: a traffic process's error, a daemon that exited. */
  errors: string[];
}

interface Measure {
  name: string;
  unit: string;
  pick: (p: Proc) => number;
  /** Shown as value / scale. */
  scale: number;
  bound: (plan: SoakPlan) => number;
}

const MiB = 2 ** 20;
export const MEASURES: readonly Measure[] = [
  { name: 'RSS', unit: 'MiB', pick: (p) => p.rssBytes, scale: MiB, bound: (plan) => plan.rssBoundBytes },
  { name: 'open fds', unit: '', pick: (p) => p.fds, scale: 1, bound: () => 0 },
  { name: 'threads', unit: '', pick: (p) => p.threads, scale: 1, bound: () => 0 },
  { name: 'libuv handles', unit: '', pick: (p) => p.handles, scale: 1, bound: () => 0 },
];

/**
 * Growth after the warm-up: the lowest of the last few samples minus the lowest of the
 * first few after the warm-up. A leak lifts the floor; a passing peak (a collection due,
 * a transfer in flight) does not. Undefined with fewer than two samples to judge.
 */
export function growth(values: readonly number[]): number | undefined {
  if (values.length < 2) return undefined;
  const window = Math.max(1, Math.min(3, Math.floor(values.length / 2)));
  return Math.min(...values.slice(-window)) - Math.min(...values.slice(0, window));
}

/** Handshakes completed by both daemons between the first and the last sample: each is one key rotation. */
export function rotations(samples: readonly Sample[]): number {
  if (samples.length === 0) return 0;
  const done = (s: Sample): number => s.a.initiated + s.b.initiated;
  return done(samples.at(-1)!) - done(samples[0]!);
}

/** Rotations a run of the plan should see at least: half the rekey intervals that fit in it. */
export function expectedRotations(plan: SoakPlan): number {
  return Math.floor(plan.seconds / plan.rekeySeconds / 2);
}

export interface Verdict {
  /** Transfers matched, keys rotated, nothing broke. */
  correct: boolean;
  /** Nothing grew past its bound after the warm-up. */
  flat: boolean;
  /** What failed or grew, one line each. */
  reasons: string[];
}

export function verdict(r: SoakResult): Verdict {
  const reasons = [...r.errors];
  for (const d of r.directions) {
    if (d.tcpMismatched.length > 0) reasons.push(`${d.label}: ${d.tcpMismatched.length} TCP transfer(s) differ or never arrived (ids ${d.tcpMismatched.slice(0, 10).join(', ')})`);
    if (d.tcpSent === 0) reasons.push(`${d.label}: no TCP transfer completed`);
    if (d.udp !== undefined && d.udp.corrupt > 0) reasons.push(`${d.label}: ${d.udp.corrupt} corrupt UDP datagram(s)`);
    if (d.udp !== undefined && d.udp.received === 0) reasons.push(`${d.label}: no UDP datagram arrived`);
  }
  const rotated = rotations(r.samples);
  if (rotated < expectedRotations(r.plan)) {
    reasons.push(`keys rotated ${rotated} times; a ${r.plan.seconds} s run with a rekey every ${r.plan.rekeySeconds} s should see at least ${expectedRotations(r.plan)}`);
  }
  const correct = reasons.length === 0;
  let flat = true;
  const judged = r.samples.filter((s) => s.t >= r.plan.warmupSeconds);
  if (judged.length < 2) {
    flat = false;
    reasons.push(`only ${judged.length} sample(s) after the ${r.plan.warmupSeconds} s warm-up: too few to judge`);
  }
  for (const side of ['a', 'b'] as const) {
    for (const m of MEASURES) {
      const g = growth(judged.map((s) => m.pick(s[side])));
      if (g !== undefined && g > m.bound(r.plan)) {
        flat = false;
        reasons.push(`daemon ${side}: ${m.name} grew by ${show(g, m)} after the warm-up (bound ${show(m.bound(r.plan), m)})`);
      }
    }
  }
  return { correct, flat, reasons };
}

function show(v: number, m: Measure): string {
  const text = m.scale === 1 ? String(v) : (v / m.scale).toFixed(1);
  return m.unit === '' ? text : `${text} ${m.unit}`;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

export function soakMarkdown(r: SoakResult): string {
  const v = verdict(r);
  const { plan, samples } = r;
  const lines: string[] = [];
  lines.push(`# Soak: tundra, ${+(plan.seconds / 60).toFixed(2)} min, keys rotated every ${plan.rekeySeconds} s`, '');
  lines.push(`Run ${r.runId}, started ${r.started}, ${r.host}. Command: \`${r.command}\``, '');
  lines.push(`TCP ${plan.tcpMbits} Mbit/s per direction in transfers of ${+(plan.transferBytes / MiB).toFixed(2)} MiB`
    + `${plan.udpMbits > 0 ? `, UDP ${plan.udpMbits} Mbit/s per direction` : ''}; a sample every ${plan.sampleSeconds} s, the first ${plan.warmupSeconds} s not judged.`, '');
  lines.push(`**Verdict: ${v.correct && v.flat ? 'PASS' : 'FAIL'}** — ${v.correct ? 'every transfer byte-exact, keys rotated' : 'transfers or rotation FAILED'}; `
    + `daemons ${v.flat ? 'flat' : 'NOT flat'} (after the warm-up, RSS grew at most ${+(plan.rssBoundBytes / MiB).toFixed(1)} MiB, fds, threads and handles not at all).`);
  for (const reason of v.reasons) lines.push(`- ${reason}`);
  lines.push('', '## Transfers', '');
  lines.push('| direction | TCP transfers sent / received | TCP bytes | differ | UDP sent / received (lost) | corrupt | duplicates |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const d of r.directions) {
    const u = d.udp;
    // A source ended before its report (a run cut short) has no count of what it sent.
    const lost = u === undefined || u.sent === 0 ? '–' : fmt(u.sent - u.received);
    const udp = u === undefined ? ['–', '–', '–'] : [`${fmt(u.sent)} / ${fmt(u.received)} (${lost})`, fmt(u.corrupt), fmt(u.duplicates)];
    lines.push(`| ${d.label} | ${fmt(d.tcpSent)} / ${fmt(d.tcpReceived)} | ${fmt(d.tcpBytes)} | ${d.tcpMismatched.length} | ${udp.join(' | ')} |`);
  }
  const last = samples.at(-1);
  if (last !== undefined) {
    lines.push('', `Where packets were lost: tundra dropped (every reason; by reason in logs/metrics-a.txt, metrics-b.txt) a ${fmt(last.a.drops)}, b ${fmt(last.b.drops)}; `
      + `the kernel dropped at the TUN before tundra read them a ${fmt(last.a.tunDrops)}, b ${fmt(last.b.tunDrops)}; `
      + `UDP datagrams dropped for a full receive buffer in a's namespace ${fmt(last.a.udpRcvbufErrors)}, in b's ${fmt(last.b.udpRcvbufErrors)}.`);
  }
  lines.push('', '## Key rotation', '');
  lines.push(`Handshakes completed during the run: ${rotations(samples)} (at least ${expectedRotations(plan)} expected).`
    + (last === undefined ? '' : ` In all, daemon a initiated ${last.a.initiated} and answered ${last.a.answered}, daemon b initiated ${last.b.initiated}`
      + ` and answered ${last.b.answered}; handshake messages refused or attempts given up: a ${last.a.handshakeFailures}, b ${last.b.handshakeFailures}.`));
  lines.push('', '## Daemons', '');
  lines.push('| daemon | measure | start | middle | end | max | growth after warm-up | bound |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const judged = samples.filter((s) => s.t >= plan.warmupSeconds);
  const middle = samples[Math.floor(samples.length / 2)];
  for (const side of ['a', 'b'] as const) {
    for (const m of MEASURES) {
      const at = (s: Sample | undefined): string => (s === undefined ? '–' : show(m.pick(s[side]), m));
      const max = samples.length === 0 ? '–' : show(Math.max(...samples.map((s) => m.pick(s[side]))), m);
      const g = growth(judged.map((s) => m.pick(s[side])));
      lines.push(`| ${side} | ${m.name} | ${at(samples[0])} | ${at(middle)} | ${at(last)} | ${max} | ${g === undefined ? '–' : show(g, m)} | ${show(m.bound(plan), m)} |`);
    }
  }
  lines.push('', `Start, middle and end are the samples at ${[samples[0], middle, last].map((s) => (s === undefined ? '–' : `${Math.round(s.t)} s`)).join(', ')}; `
    + 'growth is the lowest of the last three samples minus the lowest of the first three after the warm-up.', '');
  return lines.join('\n');
}
