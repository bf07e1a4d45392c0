// Test fixture, run inside a test namespace (`ip netns exec HOME node tun-netns-walk.js
// IFNAME RENAMED HOME C D`): opens TUN IFNAME there and walks the interface through the
// namespaces — to C, on to D renamed RENAMED (C has an nsid for D, HOME none yet), an
// MTU set in D, back HOME, to C again, then C deleted — printing after each step one JSON
// line of what tunLink and tunName say ({ step, link } or { step, error }). Bounded:
// the wait for the deletion is at most 10 s. The caller makes and deletes the namespaces.
import { spawnSync } from 'node:child_process';
import { openTun, tunLink, tunName } from '../../src/tun/tun.js';

const [name, renamed, home, c, d] = process.argv.slice(2);
if (d === undefined) throw new Error('usage: tun-netns-walk IFNAME RENAMED HOME C D');

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function errorOf(err: unknown): Record<string, unknown> {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code, syscall: e.syscall, errno: e.errno, message: e.message };
}

const tun = openTun(name!);
function report(step: string): void {
  let line: Record<string, unknown>;
  try {
    line = { step, link: tunLink(tun.fd), name: tunName(tun.fd) };
  } catch (err) {
    line = { step, error: errorOf(err) };
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

report('home');
ip('link', 'set', name!, 'netns', c!);
report('c');
ip('-n', c!, 'link', 'set', name!, 'netns', d!, 'name', renamed!);
report('d renamed');
ip('-n', d!, 'link', 'set', renamed!, 'mtu', '1280');
report('d mtu');
ip('-n', d!, 'link', 'set', renamed!, 'netns', home!);
report('home again');
ip('link', 'set', renamed!, 'netns', c!);
ip('netns', 'del', c!);
const deadline = Date.now() + 10_000;
for (;;) {
  try {
    tunName(tun.fd);
  } catch {
    break;
  }
  if (Date.now() > deadline) break;
  spawnSync('sleep', ['0.05']);
}
report('c deleted');
