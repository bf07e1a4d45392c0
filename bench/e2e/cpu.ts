// CPU time from /proc: of the tunnel daemons (per process and for one thread) and of the
// whole machine, to divide by the bytes a load moved.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime + stime in clock ticks, from the text of /proc/PID/stat or /proc/PID/task/TID/stat. */
export function parseProcessStat(text: string): number {
  // comm (field 2) is in parentheses and may itself hold spaces and ')': the last ')' ends it.
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc stat line: ${text.slice(0, 80)}`);
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state): utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`no utime/stime in /proc stat line: ${text.slice(0, 80)}`);
  return utime + stime;
}

/** Busy ticks of all CPUs, from the "cpu " line of /proc/stat: user+nice+system+irq+softirq+steal. */
export function parseMachineStat(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('no "cpu " line in /proc/stat');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  const busy = [0, 1, 2, 5, 6, 7].map((i) => v[i] ?? 0);
  if (busy.some((x) => !Number.isFinite(x))) throw new Error(`bad "cpu " line in /proc/stat: ${line}`);
  return busy.reduce((a, b) => a + b, 0);
}

let clockTicks: number | undefined;

/** The kernel's USER_HZ, in which /proc counts: asked once. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout?.trim());
    clockTicks = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

function readStat(path: string, what: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${what} is gone (${(err as Error).message})`);
  }
  return parseProcessStat(text);
}

/** Clock ticks (user + system, every thread) of a process; an Error if it is gone. */
export function processTicks(pid: number): number {
  return readStat(`/proc/${pid}/stat`, `process ${pid}`);
}

/** CPU seconds (user + system, every thread) of the processes, summed; an Error if one is gone. */
export function processCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += processTicks(pid);
  return ticks / ticksPerSecond();
}

/** CPU seconds of one thread of a process (the main thread: tid = pid). */
export function threadCpuSeconds(pid: number, tid: number): number {
  return readStat(`/proc/${pid}/task/${tid}/stat`, `thread ${tid} of process ${pid}`) / ticksPerSecond();
}

/** Busy CPU seconds of the whole machine since boot, all CPUs summed. */
export function machineBusySeconds(): number {
  return parseMachineStat(readFileSync('/proc/stat', 'utf8')) / ticksPerSecond();
}
