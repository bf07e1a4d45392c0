// Going to the background the way wireguard-go does: the parent starts a copy of
// itself in the foreground, detached, waits until that copy has the interface and
// its UAPI socket ready (or has failed), and exits with the result. wg-quick runs
// `wg setconf` right after, so "ready" must mean ready.
import { spawn } from 'node:child_process';
import { logLevelFromEnv } from '../log.js';

/** Sent by a foreground child over the IPC channel its detaching parent gave it. */
export type ReadyMessage = { ready: true } | { ready: false; error: string };

const READY_TIMEOUT = 30_000;

export function tellParent(message: ReadyMessage): void {
  if (process.send === undefined) return;
  process.send(message, () => process.disconnect());
}

/** Starts `main.js -f name` in the background; resolves to this process's exit status. */
export function detach(mainScript: string, name: string): Promise<number> {
  // As wireguard-go: the background daemon keeps our stdout/stderr only when LOG_LEVEL asks for logs.
  const keepOutput = process.env.LOG_LEVEL !== undefined && logLevelFromEnv(process.env.LOG_LEVEL) !== 'silent';
  const output = keepOutput ? 'inherit' : 'ignore';
  const child = spawn(process.execPath, [mainScript, '--foreground', name], {
    detached: true,
    stdio: ['ignore', output, output, 'ipc'],
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1' },
  });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (status: number, error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) process.stderr.write(`tundra: ${error}\n`);
      resolve(status);
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      settle(1, `${name}: the daemon did not become ready in ${READY_TIMEOUT / 1000} s`);
    }, READY_TIMEOUT);
    child.once('message', (message: ReadyMessage) => {
      if (!message.ready) return settle(1, message.error);
      child.unref();
      child.disconnect();
      settle(0);
    });
    child.once('exit', (code, signal) => {
      settle(1, `${name}: the daemon exited before it was ready (${signal ?? `status ${code}`})`);
    });
  });
}
