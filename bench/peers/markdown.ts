// A many-peers report as Markdown: a table per measure, a row per (peer count, metric), a
// column per implementation; each cell the median (lowest–highest) and its ratio to the
// reference's, and for the active peer's TCP the ratio of the most peers to 1 peer.
import type { Report, Result } from '../report-schema.js';
import { firstSeen, grouped, roundsText, startedUtc } from '../e2e/markdown.js';

export const GROUP = 'peers';

interface Section {
  title: string;
  /** What the table's rows are, said under its title. */
  note: string;
  tests: string[];
  /** Metrics in row order, with their labels. */
  metrics: [metric: string, label: string][];
  /** The metric that also gets a "most peers / 1 peer" row. */
  scaleRatio?: string;
}

const SECTIONS: Section[] = [
  {
    title: 'Idle CPU',
    note: 'CPU (utime + stime, every thread) of side a\'s daemon over the window, nothing on the tunnel; the idle peers keep retrying their handshakes.',
    tests: ['idle'],
    metrics: [['cpu_ticks', 'CPU, ticks'], ['cpu_core_pct', 'CPU, % of a core']],
  },
  {
    title: 'TCP of the active peer',
    note: 'iperf3, one stream, a to b through the tunnel, with and without the idle peers.',
    tests: ['tcp1'],
    metrics: [['throughput_bps', 'throughput, Mbit/s'], ['cpu_ns_per_byte', 'CPU of both daemons, ns/B']],
    scaleRatio: 'throughput_bps',
  },
  {
    title: 'Memory',
    note: 'VmRSS of side a\'s daemon with that many configured peers (1 active, the rest idle, no keepalive).',
    tests: ['rss'],
    metrics: [['rss_bytes', 'VmRSS, MiB']],
  },
  {
    title: 'wg command times',
    note: 'Wall time of the command, as side a\'s daemon answers it: addconf of N peers to an interface with only the active one; ' +
      'syncconf to a config of N peers with half of them replaced by new ones; show dump, which lists N + 1 peers.',
    tests: ['wg-addconf', 'wg-syncconf', 'wg-show-dump'],
    metrics: [['seconds', 's']],
  },
];

const COMMAND: Record<string, string> = { 'wg-addconf': 'wg addconf', 'wg-syncconf': 'wg syncconf', 'wg-show-dump': 'wg show dump' };

function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_[\]<>|~&]/g, '\\$&');
}

const oneLine = (s: string): string => s.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' / ');

/** A value as its table shows it. */
export function formatPeersValue(metric: string, x: number): string {
  switch (metric) {
    case 'throughput_bps': return grouped(x / 1e6, 0);
    case 'cpu_ns_per_byte': return x.toFixed(2);
    case 'cpu_core_pct': return x.toFixed(1);
    case 'rss_bytes': return grouped(x / 2 ** 20, 1);
    case 'seconds': return x < 10 ? x.toFixed(3) : x.toFixed(1);
    default: return grouped(x, 0);
  }
}

const peersOf = (r: Result): number => Number(r.params?.['peers'] ?? 0);

function cell(r: Result | undefined, ref: Result | undefined): string {
  if (r === undefined) return '–';
  let s = formatPeersValue(r.metric, r.median);
  if (r.samples.length > 1) s += ` (${formatPeersValue(r.metric, r.min)}–${formatPeersValue(r.metric, r.max)})`;
  if (ref !== undefined && ref !== r && ref.median !== 0) s += ` ×${(r.median / ref.median).toFixed(2)}`;
  return s;
}

function section(sec: Section, results: readonly Result[], impls: readonly string[], reference: string | undefined): string[] {
  const mine = results.filter((r) => r.group === GROUP && sec.tests.includes(r.test) && sec.metrics.some(([m]) => m === r.metric));
  if (mine.length === 0) return [];
  const columns = impls.filter((impl) => mine.some((r) => r.impl === impl));
  const multi = sec.tests.length > 1;
  const head = [...(multi ? ['command'] : []), 'peers', ...(sec.metrics.length > 1 ? ['metric'] : []),
    ...columns.map((impl) => `${escapeMarkdown(impl)}${impl === reference ? ' (ref)' : ''}`)];
  const window = sec.tests.includes('idle') ? mine.find((r) => r.params?.['seconds'] !== undefined)?.params?.['seconds'] : undefined;
  // One metric has no metric column: its label goes into the title.
  const lines = [`## ${sec.title}${sec.metrics.length === 1 ? `, ${sec.metrics[0]![1]}` : ''}`, '', sec.note + (window === undefined ? '' : ` Window ${window} s.`), '',
    `| ${head.join(' | ')} |`, `|${head.map((h) => (h === 'command' || h === 'peers' || h === 'metric' ? ' --- ' : ' ---: ')).join('|')}|`];
  const counts = [...new Set(mine.map(peersOf))].sort((x, y) => x - y);
  for (const test of sec.tests) {
    for (const peers of counts) {
      for (const [metric, label] of sec.metrics) {
        const row = mine.filter((r) => r.test === test && peersOf(r) === peers && r.metric === metric);
        if (row.length === 0) continue;
        const ref = row.find((r) => r.impl === reference);
        lines.push(`| ${[...(multi ? [COMMAND[test] ?? test] : []), grouped(peers, 0), ...(sec.metrics.length > 1 ? [label] : []),
          ...columns.map((impl) => cell(row.find((r) => r.impl === impl), ref))].join(' | ')} |`);
      }
    }
    if (sec.scaleRatio !== undefined && counts.length > 1) {
      const lo = counts[0]!;
      const hi = counts[counts.length - 1]!;
      const ratios = columns.map((impl) => {
        const at = (peers: number): Result | undefined => mine.find((r) => r.test === test && r.impl === impl && peersOf(r) === peers && r.metric === sec.scaleRatio);
        const a = at(lo);
        const b = at(hi);
        return a === undefined || b === undefined || a.median === 0 ? '–' : `×${(b.median / a.median).toFixed(2)}`;
      });
      const label = sec.metrics.find(([m]) => m === sec.scaleRatio)![1].replace(/,.*$/, '');
      lines.push(`| ${[...(multi ? [''] : []), `${grouped(hi, 0)} / ${grouped(lo, 0)}`, ...(sec.metrics.length > 1 ? [`${label}, ratio`] : []), ...ratios].join(' | ')} |`);
    }
  }
  return ['', ...lines];
}

export function peersMarkdown(report: Report): string {
  const { run, results } = report;
  const rounds = roundsText(results);
  const runLine = [
    escapeMarkdown(startedUtc(run.started)),
    `Linux ${escapeMarkdown(run.host.kernel)}, ${run.host.cpus} CPUs, Node ${escapeMarkdown(run.host.node)}`,
    ...(run.revision === undefined ? [] : [`revision ${escapeMarkdown(run.revision.slice(0, 12))}`]),
    ...(rounds === undefined ? [] : [rounds]),
    `run ${escapeMarkdown(run.id)}: \`${run.command.replaceAll('`', "'")}\``,
  ].join(' · ');
  const lines = ['# tundra with many peers', '', runLine];
  if (results.length > 0) {
    const ratio = report.reference === undefined ? '' : `; × is its ratio to the reference's (${escapeMarkdown(report.reference)})`;
    lines.push('', `A cell is the median of the rounds, (lowest–highest) when there are more than one${ratio}.`);
  } else {
    lines.push('', 'No results.');
  }
  const impls = firstSeen(results, (r) => r.impl);
  for (const sec of SECTIONS) lines.push(...section(sec, results, impls, report.reference));
  const skipped = report.skipped ?? [];
  if (skipped.length > 0) {
    lines.push('', '## Skipped', '');
    for (const s of skipped) {
      const head = s.test === undefined ? s.impl : `${s.impl}, ${s.test}`;
      lines.push(`- ${escapeMarkdown(head)}: ${escapeMarkdown(oneLine(s.reason))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
