// Child of test/unit/uapi-umask.test.ts: under umask 077, starts a UAPI server in the
// directory given (created here, with missing parents), reports the modes it finds and
// what `wg show` says (when asked), as one JSON line, then closes the server.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { startUapiServer } from '../../src/uapi/server.js';
import type { UapiDevice } from '../../src/uapi/protocol.js';

const [directory, name, top, wgShow] = process.argv.slice(2) as [string, string, string, string];
process.umask(0o077);
const device: UapiDevice = {
  get: () => ({ privateKey: undefined, listenPort: 51820, fwmark: 0, peers: [] }),
  set: async () => {},
};
const server = await startUapiServer(name, device, { directory });
const mode = (path: string): string => (statSync(path).mode & 0o7777).toString(8);
const modes: Record<string, string> = {};
for (let d = directory; d.length >= top.length; d = dirname(d)) modes[d] = mode(d);
const socket = mode(server.path);
// Asynchronously: this process's event loop answers wg.
const wg = wgShow !== 'wg' ? undefined : await new Promise<{ status: number | null; out: string }>((resolve) => {
  execFile('wg', ['show', name], { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
    resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, out: stdout + stderr });
  });
});
await server.close();
process.stdout.write(`${JSON.stringify({ umask: process.umask().toString(8), modes, socket, wg })}\n`);
