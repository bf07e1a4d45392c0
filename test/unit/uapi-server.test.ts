import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UapiError } from '../../src/errors.js';
import { formatGetResponse, type SetRequest, type UapiDevice, type UapiInterfaceState } from '../../src/uapi/protocol.js';
import { startUapiServer, type UapiServer } from '../../src/uapi/server.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { waitFor } from '../helpers/wait.js';

const PEER = Buffer.alloc(32, 0x11).toString('hex');

class RecordingDevice implements UapiDevice {
  readonly requests: SetRequest[] = [];
  failWith: unknown = undefined;
  getFails = false;
  state: UapiInterfaceState = {
    privateKey: undefined,
    listenPort: 51820,
    fwmark: 0,
    peers: [{
      publicKey: new Uint8Array(32).fill(0x11), presharedKey: undefined, endpoint: { address: '198.18.0.2', port: 51820 },
      lastHandshakeWallMs: 0, rxBytes: 0, txBytes: 0, persistentKeepalive: 0,
      allowedIPs: Array.from({ length: 64 }, (_, i) => parsePrefix(`100.96.${i}.0/24`)),
    }],
  };

  get(): UapiInterfaceState {
    if (this.getFails) throw new Error('device gone');
    return this.state;
  }

  async set(request: SetRequest): Promise<void> {
    await new Promise((r) => setTimeout(r, 2)); // a device answers later, not at once
    if (this.failWith !== undefined) throw this.failWith;
    this.requests.push(request);
    if (request.listenPort !== undefined) this.state = { ...this.state, listenPort: request.listenPort };
  }
}

/**
 * Sends `input` (in pieces, when asked) and collects what comes back until the server
 * closes, `answers` answers have come, or `ms` pass.
 */
function exchange(
  path: string,
  input: string | Buffer | Array<string | Buffer>,
  { ms = 300, end = false, answers = Infinity } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    let closed = false;
    const stop = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(stop, ms);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if ((text.match(/errno=-?\d+\n\n/g) ?? []).length >= answers) stop();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close while we still write (after an unknown operation, say).
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    socket.on('connect', async () => {
      for (const piece of Array.isArray(input) ? input : [input]) {
        socket.write(piece);
        await new Promise((r) => setImmediate(r));
      }
      if (end) socket.end();
    });
  });
}

const GET = 'get=1\n\n';

describe('uapi server', () => {
  let dir: string;
  let server: UapiServer;
  const device = new RecordingDevice();
  const logged: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tundra-uapi-'));
    server = await startUapiServer('tdr0', device, { directory: join(dir, 'run', 'wireguard'), maxRequestBytes: 4096, log: (m) => logged.push(m) });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('creates the directory 0755 and the socket 0600, nothing else left behind', async () => {
    assert.equal(server.path, join(dir, 'run', 'wireguard', 'tdr0.sock'));
    assert.equal(statSync(join(dir, 'run', 'wireguard')).mode & 0o777, 0o755);
    const st = lstatSync(server.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await import('node:fs/promises').then((fs) => fs.readdir(join(dir, 'run', 'wireguard'))), ['tdr0.sock']);
  });

  test('get answers what the device holds', async () => {
    const { text } = await exchange(server.path, GET, { answers: 1 });
    assert.equal(text, formatGetResponse(device.state));
  });

  test('pipelined operations run in order, whether sent at once or a byte at a time', async () => {
    const session = `get=1\n\nset=1\nlisten_port=1111\n\nget=1\n\nset=1\nlisten_port=2222\npublic_key=${PEER}\nallowed_ip=10.0.0.0/8\n\nget=1\n\n`;
    for (const pieces of [[session], [...session]]) {
      device.state = { ...device.state, listenPort: 51820 };
      device.requests.length = 0;
      const { text, closed } = await exchange(server.path, pieces, { ms: 1500, end: true });
      assert.ok(closed, 'the server ends after a half-close once it has answered');
      const answers = text.split(/(?<=\n\n)/);
      assert.equal(answers.length, 5);
      assert.match(answers[0]!, /^listen_port=51820\n/);
      assert.equal(answers[1], 'errno=0\n\n');
      assert.match(answers[2]!, /^listen_port=1111\n/);
      assert.equal(answers[3], 'errno=0\n\n');
      assert.match(answers[4]!, /^listen_port=2222\n/);
      assert.equal(device.requests.length, 2);
    }
  });

  test('a malformed set changes nothing and the connection goes on', async () => {
    device.requests.length = 0;
    device.state = { ...device.state, listenPort: 51820 };
    const { text, closed } = await exchange(server.path, `set=1\nlisten_port=7\npublic_key=${PEER}\nallowed_ip=10.0.0.0/33\n\n${GET}`, { answers: 2 });
    assert.ok(!closed);
    assert.match(text, /^errno=-22\n\nlisten_port=51820\n/);
    assert.equal(device.requests.length, 0);
    assert.match(logged.at(-1)!, /allowed_ip/);
  });

  test('device failures come back as negative errno', async () => {
    device.failWith = new UapiError(constants.errno.EADDRINUSE, 'port taken');
    assert.equal((await exchange(server.path, 'set=1\nlisten_port=53\n\n', { answers: 1 })).text, 'errno=-98\n\n');
    device.failWith = new Error('surprise');
    assert.equal((await exchange(server.path, 'set=1\nlisten_port=53\n\n', { answers: 1 })).text, 'errno=-55\n\n');
    device.failWith = undefined;
    device.getFails = true;
    assert.equal((await exchange(server.path, GET, { answers: 1 })).text, 'errno=-55\n\n');
    device.getFails = false;
  });

  test('an unknown operation is closed without an answer; a trailing byte after get=1 is EINVAL', async () => {
    assert.deepEqual(await exchange(server.path, `foo=1\n${GET}`), { text: '', closed: true });
    const { text } = await exchange(server.path, `get=1\nx${GET}`, { answers: 2 });
    assert.equal(text, `errno=-22\n\n${formatGetResponse(device.state)}`);
  });

  test('no answer and no log line quotes a value of the request, only its key', async () => {
    const secret = `48c4${randomBytes(30).toString('hex')}`;
    const from = logged.length;
    const requests: Array<[string, string | undefined]> = [
      [`private_key=${secret}\n\n`, 'private_key'], // set=1 forgotten: wireguard-go's log showed the key
      [`set=1\nprivate_key=${secret.slice(1)}\n\n`, 'private_key'],
      [`set=1\npublic_key=${PEER}\npreshared_key=${secret}x\n\n`, 'preshared_key'],
      [`set=1\nlisten_port=${secret}\n\n`, 'listen_port'],
      [`set=1\npublic_key=${PEER}\nendpoint=${secret}\n\n`, 'endpoint'],
      [`set=1\npublic_key=${PEER}\nallowed_ip=${secret}/8\n\n`, 'allowed_ip'],
      [`set=1\n${secret}\n\n`, undefined],
      [`get=1\n${secret}\n`, undefined],
      [`set=1\nprivate_key=${secret.repeat(1100)}\n\n`, undefined],
    ];
    for (const [request, key] of requests) {
      const before = logged.length;
      const { text } = await exchange(server.path, request, { ms: 500, answers: request.startsWith('get') ? 2 : 1 });
      await waitFor('the log line', () => logged.length > before);
      const lines = logged.slice(before).join('\n');
      for (const out of [text, lines]) {
        for (let i = 0; i + 10 <= secret.length; i++) assert.ok(!out.includes(secret.slice(i, i + 10)), `${request.slice(0, 30)}: ${out}`);
      }
      if (key !== undefined) assert.ok(lines.includes(`"${key}"`) || lines.startsWith(`${key}:`), `the log names ${key}: ${lines}`);
    }
    assert.match(logged.slice(from)[0]!, /^invalid operation "private_key" \(the value is not shown\); closing the connection$/);
  });

  test('an oversized request gets EIO and a closed connection', async () => {
    device.requests.length = 0;
    const { text, closed } = await exchange(server.path, `set=1\n${'fwmark=1\n'.repeat(1000)}\n${GET}`, { ms: 1000 });
    assert.deepEqual({ text, closed }, { text: 'errno=-5\n\n', closed: true });
    assert.equal(device.requests.length, 0);
  });

  test('clients that vanish mid-request, or send garbage, change nothing and break nothing', async () => {
    device.requests.length = 0;
    await exchange(server.path, `set=1\nlisten_port=9\npublic_key=${PEER}\n`, { ms: 30 });
    await exchange(server.path, `set=1\nlisten_port=9\n`, { ms: 100, end: true });
    for (let i = 0; i < 30; i++) {
      const garbage = randomBytes(1 + i * 37);
      await exchange(server.path, i % 2 ? [GET.slice(0, 3), garbage] : garbage, { ms: 20 });
    }
    // Gone while the server is still writing a large answer.
    await new Promise<void>((resolve) => {
      const s: Socket = connect(server.path, () => {
        s.write(GET.repeat(200));
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 10);
      });
      s.on('error', () => {});
    });
    assert.equal(device.requests.length, 0);
    assert.equal((await exchange(server.path, GET, { answers: 1 })).text, formatGetResponse(device.state));
  });

  test('a client slow to read gets every answer, in order (the server waits for it)', async () => {
    const answer = formatGetResponse(device.state);
    const count = 3000; // ~16 MB of answers
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(server.path, () => {
        s.write(GET.repeat(count));
        s.pause();
        setTimeout(() => s.resume(), 200); // the server must wait for us meanwhile
      });
      const chunks: Buffer[] = [];
      let length = 0;
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        length += d.length;
        if (length >= answer.length * count) {
          s.end();
          resolve(Buffer.concat(chunks).toString('latin1'));
        }
      });
      s.on('error', reject);
    });
    assert.equal(text, answer.repeat(count));
  });

  test('a second server for the same interface is refused while the first lives', async () => {
    await assert.rejects(startUapiServer('tdr0', device, { directory: join(dir, 'run', 'wireguard') }), /in use/);
    assert.equal((await exchange(server.path, GET, { answers: 1 })).text, formatGetResponse(device.state));
  });

  test('interface names that cannot be files or interfaces are refused', async () => {
    for (const name of ['', 'a/b', '..', 'a b', 'a:1']) {
      await assert.rejects(startUapiServer(name, device, { directory: dir }), /not a valid interface name/, name);
    }
    await assert.rejects(startUapiServer('x'.repeat(16), device, { directory: dir }), /too long for an interface name: Linux allows at most 15 characters \(it has 16\)/);
  });
});

describe('uapi server: the socket file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tundra-uapi-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const device = new RecordingDevice();

  test('a stale socket (no one listening) is replaced', async () => {
    const path = join(dir, 'stale0.sock');
    // A socket file nobody listens on: bind elsewhere, move it, close (which unlinks only the old name).
    const old = createServer();
    await new Promise<void>((r) => old.listen(join(dir, 'tmp.sock'), r));
    await rename(join(dir, 'tmp.sock'), path);
    await new Promise((r) => old.close(r));
    assert.ok(lstatSync(path).isSocket());
    const server = await startUapiServer('stale0', device, { directory: dir });
    try {
      assert.equal((await exchange(path, GET, { answers: 1 })).text, formatGetResponse(device.state));
    } finally {
      await server.close();
    }
    assert.ok(!existsSync(path), 'close() removes the socket file');
  });

  test('a file that is not a socket is left alone', async () => {
    await writeFile(join(dir, 'file0.sock'), 'not mine');
    await assert.rejects(startUapiServer('file0', device, { directory: dir }), /not a socket/);
    assert.equal(await readFile(join(dir, 'file0.sock'), 'utf8'), 'not mine');
  });

  test('watchRemoval fires once when the socket is deleted, not for other files', async () => {
    const server = await startUapiServer('watch0', device, { directory: dir });
    let fired = 0;
    server.watchRemoval(() => fired++);
    await writeFile(join(dir, 'unrelated'), 'x');
    await rm(join(dir, 'unrelated'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fired, 0);
    await rm(server.path);
    await waitFor('the callback', () => fired > 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fired, 1);
    await server.close();
  });

  test('watchRemoval fires when another file replaces the socket, and close() leaves that file', async () => {
    const server = await startUapiServer('watch1', device, { directory: dir });
    let fired = false;
    server.watchRemoval(() => (fired = true));
    await writeFile(join(dir, 'other'), 'another daemon');
    await rename(join(dir, 'other'), server.path);
    await waitFor('the callback', () => fired);
    await server.close();
    assert.equal(await readFile(server.path, 'utf8'), 'another daemon');
  });

  test('watchRemoval registered after the file is gone still fires', async () => {
    const server = await startUapiServer('watch2', device, { directory: dir });
    await rm(server.path);
    let fired = false;
    server.watchRemoval(() => (fired = true));
    await waitFor('the callback', () => fired);
    await server.close();
  });
});
