import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { UapiError } from '../../src/errors.js';
import {
  ENOANO,
  formatFailure,
  formatGetResponse,
  formatSetRequest,
  parseSetRequest,
  UapiStream,
  type SetRequest,
  type UapiCommand,
  type UapiInterfaceState,
} from '../../src/uapi/protocol.js';
import { parsePrefix } from '../../src/routing/prefix.js';

const { EADDRINUSE, EINVAL, EIO, EPROTO } = constants.errno;

const key = (fill: number) => new Uint8Array(32).fill(fill);
const hex = (fill: number) => Buffer.from(key(fill)).toString('hex');
const P1 = hex(0x11);
const P2 = hex(0x22);

/** The error a set request's lines give, or a failure if they parse. */
function setError(lines: string[]): UapiError {
  try {
    parseSetRequest(lines);
  } catch (err) {
    assert.ok(err instanceof UapiError, `not a UapiError: ${String(err)}`);
    return err;
  }
  assert.fail(`parsed: ${JSON.stringify(lines)}`);
}

const peer = (lines: string[]) => parseSetRequest([`public_key=${P1}`, ...lines]).peers[0]!;

describe('uapi get', () => {
  const state: UapiInterfaceState = {
    privateKey: key(0x40),
    listenPort: 51820,
    fwmark: 0x1234,
    peers: [
      {
        publicKey: key(0x11),
        presharedKey: key(0x33),
        endpoint: { address: 'fd7a:7d0::2', port: 443 },
        lastHandshakeWallMs: 1_700_000_000_123.5,
        rxBytes: 2 ** 53,
        txBytes: 42,
        persistentKeepalive: 25,
        allowedIPs: [parsePrefix('100.96.1.0/24'), parsePrefix('fd7a:7d0:1::/64')],
      },
      {
        publicKey: key(0x22),
        presharedKey: undefined,
        endpoint: { address: '198.18.0.2', port: 51820 },
        lastHandshakeWallMs: 0,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 0,
        allowedIPs: [],
      },
      {
        publicKey: key(0x44),
        presharedKey: undefined,
        endpoint: undefined,
        lastHandshakeWallMs: 0,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 0,
        allowedIPs: [],
      },
    ],
  };

  test('keys in wireguard-go order, then errno=0 and a blank line', () => {
    const peerTail = 'protocol_version=1\n';
    const counters = 'last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n';
    assert.equal(
      formatGetResponse(state),
      `private_key=${hex(0x40)}\nlisten_port=51820\nfwmark=4660\n` +
        `public_key=${P1}\npreshared_key=${hex(0x33)}\n${peerTail}endpoint=[fd7a:7d0::2]:443\n` +
        'last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123500000\n' +
        'tx_bytes=42\nrx_bytes=9007199254740992\npersistent_keepalive_interval=25\n' +
        'allowed_ip=100.96.1.0/24\nallowed_ip=fd7a:7d0:1::/64\n' +
        // No preshared key is sent as zeros, as wireguard-go does.
        `public_key=${P2}\npreshared_key=${hex(0)}\n${peerTail}endpoint=198.18.0.2:51820\n${counters}` +
        `public_key=${hex(0x44)}\npreshared_key=${hex(0)}\n${peerTail}${counters}` +
        'errno=0\n\n',
    );
  });

  test('an empty interface: no private key, port or fwmark lines', () => {
    assert.equal(formatGetResponse({ privateKey: undefined, listenPort: 0, fwmark: 0, peers: [] }), 'errno=0\n\n');
    assert.equal(formatGetResponse({ privateKey: key(0), listenPort: 0, fwmark: 0, peers: [] }), 'errno=0\n\n');
  });

  test('counters are plain decimal however large', () => {
    const text = formatGetResponse({ ...state, peers: [{ ...state.peers[0]!, rxBytes: 1e21, txBytes: -1 }] });
    assert.match(text, /\nrx_bytes=1000000000000000000000\n/);
    assert.match(text, /\ntx_bytes=0\n/);
  });
});

describe('uapi set: interface keys', () => {
  test('an empty request', () => {
    assert.deepEqual(parseSetRequest([]), { replacePeers: false, peers: [] });
  });

  test('private_key is clamped as wireguard-go stores it; all zero clears; either hex case', () => {
    const raw = new Uint8Array(32).fill(0xff);
    const clamped = new Uint8Array(32).fill(0xff);
    clamped[0] = 0xf8;
    clamped[31] = 0x7f;
    assert.deepEqual(parseSetRequest([`private_key=${Buffer.from(raw).toString('hex')}`]).privateKey, clamped);
    assert.deepEqual(parseSetRequest([`private_key=${'AB'.repeat(32)}`]).privateKey?.subarray(1, 31), new Uint8Array(30).fill(0xab));
    assert.equal(parseSetRequest([`private_key=${hex(0)}`]).privateKey, null);
    for (const bad of ['', '00', hex(1) + '0', hex(1).slice(1) + 'g', ` ${hex(1)}`]) {
      assert.equal(setError([`private_key=${bad}`]).errno, EINVAL, bad);
    }
  });

  test('listen_port and fwmark: decimal within range, leading zeros allowed as Go does', () => {
    assert.equal(parseSetRequest(['listen_port=0']).listenPort, 0);
    assert.equal(parseSetRequest(['listen_port=65535']).listenPort, 65535);
    assert.equal(parseSetRequest(['listen_port=051820']).listenPort, 51820);
    assert.equal(parseSetRequest(['fwmark=4294967295']).fwmark, 4294967295);
    assert.equal(parseSetRequest(['fwmark=0']).fwmark, 0);
    for (const bad of ['listen_port=65536', 'listen_port=-1', 'listen_port=', 'listen_port= 1', 'listen_port=0x10', 'listen_port=1.5',
      'listen_port=1e3', 'fwmark=4294967296', 'fwmark=-0', `fwmark=${'9'.repeat(400)}`]) {
      assert.equal(setError([bad]).errno, EINVAL, bad);
    }
  });

  test('replace_peers takes only true', () => {
    assert.equal(parseSetRequest(['replace_peers=true']).replacePeers, true);
    assert.equal(setError(['replace_peers=false']).errno, EINVAL);
    assert.equal(setError(['replace_peers=TRUE']).errno, EINVAL);
  });

  test('peer keys before any public_key, and unknown keys, are EINVAL', () => {
    for (const line of ['allowed_ip=10.0.0.0/8', 'protocol_version=1', 'remove=true', 'bogus=1', '=x', 'get=1', 'set=1']) {
      assert.equal(setError([line]).errno, EINVAL, line);
    }
  });

  test('a line without "=" is EPROTO; the first error is the answer', () => {
    assert.equal(setError(['listen_port']).errno, EPROTO);
    assert.equal(setError(['listen_port=x', 'no equals sign']).errno, EINVAL);
    assert.equal(setError(['no equals sign', 'listen_port=x']).errno, EPROTO);
  });
});

describe('uapi set: peer keys', () => {
  test('public_key starts a peer; the same key may come twice and stays in order', () => {
    const r = parseSetRequest(['listen_port=1', `public_key=${P1}`, `public_key=${P2}`, `public_key=${P1}`, 'remove=true']);
    assert.deepEqual(r.peers.map((p) => [p.publicKey[0], p.remove]), [[0x11, false], [0x22, false], [0x11, true]]);
    assert.deepEqual(r.peers[0], { publicKey: key(0x11), remove: false, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] });
    assert.equal(setError(['public_key=1234']).errno, EINVAL);
  });

  test('interface keys after a public_key are EINVAL', () => {
    for (const line of ['listen_port=1', 'private_key=' + P1, 'fwmark=1', 'replace_peers=true']) {
      assert.equal(setError([`public_key=${P1}`, line]).errno, EINVAL, line);
    }
  });

  test('preshared_key: all zero is kept (it clears)', () => {
    assert.deepEqual(peer([`preshared_key=${hex(0x33)}`]).presharedKey, key(0x33));
    assert.deepEqual(peer([`preshared_key=${hex(0)}`]).presharedKey, key(0));
    assert.equal(setError([`public_key=${P1}`, 'preshared_key=00']).errno, EINVAL);
  });

  test('endpoint: IPv4, bracketed IPv6 (canonical), IPv4-mapped IPv6', () => {
    assert.deepEqual(peer(['endpoint=198.18.0.2:51820']).endpoint, { address: '198.18.0.2', port: 51820 });
    assert.deepEqual(peer(['endpoint=[FD7A:07D0:0:0:0:0:0:2]:443']).endpoint, { address: 'fd7a:7d0::2', port: 443 });
    assert.deepEqual(peer(['endpoint=[::ffff:198.18.0.2]:1']).endpoint, { address: '::ffff:198.18.0.2', port: 1 });
    assert.deepEqual(peer(['endpoint=198.18.0.2:0']).endpoint, { address: '198.18.0.2', port: 0 });
    for (const bad of ['198.18.0.2', '198.18.0.2:', '198.18.0.2:65536', '[198.18.0.2]:1', 'fd7a::2:1', '[fd7a::2]', '[fd7a::2]1',
      '[fd7a::2:1', '[fe80::1%lo]:1', 'example.com:1', ':1', '198.18.0.256:1', '198.018.0.2:1']) {
      assert.equal(setError([`public_key=${P1}`, `endpoint=${bad}`]).errno, EINVAL, bad);
    }
  });

  test('persistent_keepalive_interval: 0..65535', () => {
    assert.equal(peer(['persistent_keepalive_interval=25']).persistentKeepalive, 25);
    assert.equal(peer(['persistent_keepalive_interval=0']).persistentKeepalive, 0);
    assert.equal(setError([`public_key=${P1}`, 'persistent_keepalive_interval=65536']).errno, EINVAL);
    assert.equal(setError([`public_key=${P1}`, 'persistent_keepalive_interval=off']).errno, EINVAL);
  });

  test('allowed_ip: host bits cleared, "-" removes, a length is required', () => {
    assert.deepEqual(peer(['allowed_ip=100.96.1.7/24', 'allowed_ip=-fd7a:7d0:1::/64', 'allowed_ip=::ffff:10.4.0.0/112']).allowedIPs, [
      { prefix: parsePrefix('100.96.1.0/24'), remove: false },
      { prefix: parsePrefix('fd7a:7d0:1::/64'), remove: true },
      { prefix: parsePrefix('::ffff:10.4.0.0/112'), remove: false },
    ]);
    for (const bad of ['100.96.1.7', '100.96.1.0/33', 'fd7a::/129', '100.96.1.0/', '--100.96.1.0/24', '-', '', 'fe80::%lo/64', '100.96.1.0/-1']) {
      assert.equal(setError([`public_key=${P1}`, `allowed_ip=${bad}`]).errno, EINVAL, bad);
    }
  });

  test('replace_allowed_ips drops the prefixes listed before it, as applying in order would', () => {
    const p = peer(['allowed_ip=10.0.0.0/8', 'replace_allowed_ips=true', 'allowed_ip=100.96.0.0/16']);
    assert.equal(p.replaceAllowedIPs, true);
    assert.deepEqual(p.allowedIPs, [{ prefix: parsePrefix('100.96.0.0/16'), remove: false }]);
    assert.equal(setError([`public_key=${P1}`, 'replace_allowed_ips=1']).errno, EINVAL);
  });

  test('remove: what comes before or after it for that peer is dropped, but still checked', () => {
    const p = peer(['endpoint=198.18.0.2:1', 'allowed_ip=10.0.0.0/8', 'remove=true', 'persistent_keepalive_interval=5', 'allowed_ip=10.1.0.0/16',
      `preshared_key=${hex(3)}`, 'replace_allowed_ips=true']);
    assert.deepEqual(p, { publicKey: key(0x11), remove: true, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] });
    assert.equal(setError([`public_key=${P1}`, 'remove=true', 'allowed_ip=nonsense']).errno, EINVAL);
    assert.equal(setError([`public_key=${P1}`, 'remove=yes']).errno, EINVAL);
  });

  test('update_only and protocol_version', () => {
    assert.equal(peer(['update_only=true']).updateOnly, true);
    assert.equal(setError([`public_key=${P1}`, 'update_only=false']).errno, EINVAL);
    assert.equal(peer(['protocol_version=1']).remove, false);
    assert.equal(setError([`public_key=${P1}`, 'protocol_version=2']).errno, EINVAL);
    assert.equal(setError([`public_key=${P1}`, 'protocol_version=01']).errno, EINVAL);
  });

  test('keys wireguard-go does not know, or only sends in get, are EINVAL', () => {
    for (const line of ['last_handshake_time_sec=0', 'rx_bytes=0', 'endpoint ', 'Endpoint=198.18.0.2:1', 'allowed_ips=10.0.0.0/8']) {
      assert.equal(setError([`public_key=${P1}`, line]).errno, line === 'endpoint ' ? EPROTO : EINVAL, line);
    }
  });
});

describe('uapi set: round trips through formatSetRequest', () => {
  const requests: SetRequest[] = [
    { replacePeers: false, peers: [] },
    { privateKey: null, listenPort: 0, fwmark: 0, replacePeers: true, peers: [] },
    {
      privateKey: parseSetRequest([`private_key=${hex(0x55)}`]).privateKey!,
      listenPort: 51820,
      fwmark: 7,
      replacePeers: true,
      peers: [
        {
          publicKey: key(0x11),
          remove: false,
          updateOnly: true,
          presharedKey: key(0),
          endpoint: { address: 'fd7a:7d0::2', port: 443 },
          persistentKeepalive: 25,
          replaceAllowedIPs: true,
          allowedIPs: [
            { prefix: parsePrefix('100.96.0.0/16'), remove: false },
            { prefix: parsePrefix('fd7a:7d0::/48'), remove: true },
          ],
        },
        { publicKey: key(0x22), remove: true, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] },
        // update_only before remove=true (found by fuzz/ts/uapi.ts): after it, it would be ignored.
        { publicKey: key(0x33), remove: true, updateOnly: true, replaceAllowedIPs: false, allowedIPs: [] },
      ],
    },
  ];
  for (const [i, request] of requests.entries()) {
    test(`request ${i}`, () => {
      const text = formatSetRequest(request);
      assert.ok(text.startsWith('set=1\n') && text.endsWith('\n\n'));
      assert.deepEqual(parseSetRequest(text.split('\n').slice(1, -2)), request);
    });
  }
});

describe('uapi stream framing', () => {
  const drain = (stream: UapiStream): UapiCommand[] => {
    const out: UapiCommand[] = [];
    for (let c = stream.next(); c !== undefined; c = stream.next()) out.push(c);
    return out;
  };
  const commands = (input: string | Buffer, pieces = 1, limits = {}): UapiCommand[] => {
    const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
    const stream = new UapiStream(limits);
    const out: UapiCommand[] = [];
    const step = Math.max(1, Math.ceil(bytes.length / pieces));
    for (let i = 0; i < bytes.length; i += step) {
      stream.push(bytes.subarray(i, i + step));
      out.push(...drain(stream));
    }
    return out;
  };
  const summary = (cs: UapiCommand[]) =>
    cs.map((c) => (c.kind === 'error' ? `error ${c.error.errno}${c.close ? ' close' : ''}` : c.kind));

  const SESSION = `get=1\n\nset=1\nlisten_port=1\npublic_key=${P1}\r\nallowed_ip=10.0.0.0/8\n\nset=1\nlisten_port=x\npublic_key=${P2}\n\nget=1\nxget=1\n\n`;

  test('several operations on one connection, in any pieces (down to one byte)', () => {
    const whole = commands(SESSION);
    assert.deepEqual(summary(whole), ['get', 'set', `error ${EINVAL}`, `error ${EINVAL}`, 'get']);
    const set = whole[1] as Extract<UapiCommand, { kind: 'set' }>;
    assert.deepEqual(set.request, parseSetRequest(['listen_port=1', `public_key=${P1}`, 'allowed_ip=10.0.0.0/8']));
    for (const pieces of [2, 3, 7, 50, SESSION.length]) assert.deepEqual(commands(SESSION, pieces), whole, `${pieces} pieces`);
  });

  test('an unknown operation closes without an answer, and nothing after it is read', () => {
    for (const op of ['foo=1\n', 'set=1\r\n\r\n', 'get=2\n\n', '\n', 'GET=1\n\n', 'set=1 \n\n']) {
      assert.deepEqual(summary(commands(`${op}get=1\n\n`)), ['close'], JSON.stringify(op));
    }
  });

  test('CR LF inside a set is accepted, as Go\'s line scanner drops the CR', () => {
    assert.deepEqual(summary(commands('set=1\r\nfwmark=5\r\n\r\n')), ['close']);
    const [c] = commands('set=1\nfwmark=5\r\n\r\nget=1\n\n');
    assert.deepEqual(c, { kind: 'set', request: { fwmark: 5, replacePeers: false, peers: [] } });
  });

  test('a request that never ends within the limits: EIO, then close', () => {
    assert.deepEqual(summary(commands(`set=1\nfwmark=${'1'.repeat(70_000)}\n\n`, 40)), [`error ${EIO} close`]);
    assert.deepEqual(summary(commands(`set=1\n${'fwmark=1\n'.repeat(200)}\nget=1\n\n`, 9, { maxRequestBytes: 1000 })), [`error ${EIO} close`]);
    assert.deepEqual(summary(commands(`set=1\n${'fwmark=1\n'.repeat(100)}\nget=1\n\n`, 9, { maxRequestBytes: 1000 })), ['set', 'get']);
    assert.deepEqual(summary(commands(`get${'='.repeat(70_000)}`, 30)), ['close']);
  });

  test('an unfinished request gives nothing', () => {
    assert.deepEqual(commands(`set=1\npublic_key=${P1}\n`), []);
    assert.deepEqual(commands('get=1\n'), []);
    assert.deepEqual(commands('get='), []);
  });

  test('fuzz: random bytes and random lines never throw, and every command is well formed', () => {
    const words = ['get=1', 'set=1', '', 'public_key=' + P1, 'remove=true', 'allowed_ip=10.0.0.0/8', 'allowed_ip=-::/0', 'endpoint=[::1]:1',
      'listen_port=1', 'private_key=' + hex(0), 'x', '=', '\r', '\x00\xff', 'replace_peers=true', 'update_only=true', 'protocol_version=1'];
    for (let round = 0; round < 300; round++) {
      let input: Buffer;
      if (round % 3 === 0) {
        input = randomBytes(1 + (round % 200));
      } else {
        const lines: string[] = [round % 2 ? 'set=1' : 'get=1'];
        for (let i = 0; i < 1 + (round % 25); i++) lines.push(words[randomBytes(1)[0]! % words.length]!);
        input = Buffer.from(lines.join('\n') + '\n\n', 'latin1');
      }
      const out = commands(input, 1 + (round % 11));
      for (const c of out) {
        if (c.kind === 'error') assert.ok(c.error instanceof UapiError && c.error.errno > 0);
        else assert.ok(['get', 'set', 'close'].includes(c.kind));
      }
      assert.ok(out.filter((c) => c.kind === 'close' || (c.kind === 'error' && c.close)).length <= 1);
    }
  });

  test('fuzz: parseSetRequest throws only UapiErrors', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz_=-:/.[]%0123456789 ';
    for (let round = 0; round < 2000; round++) {
      const lines = Array.from({ length: 1 + (round % 6) }, () =>
        Array.from(randomBytes(1 + (randomBytes(1)[0]! % 40)), (b) => alphabet[b % alphabet.length]).join(''));
      try {
        parseSetRequest(round % 2 ? [`public_key=${P1}`, ...lines] : lines);
      } catch (err) {
        assert.ok(err instanceof UapiError, String(err));
      }
    }
  });
});

describe('uapi errno answers', () => {
  test('negative on the wire whatever sign a UapiError carries; system errors keep theirs; others are -55', () => {
    assert.equal(formatFailure(new UapiError(EADDRINUSE, 'port taken')), 'errno=-98\n\n');
    assert.equal(formatFailure(new UapiError(-EINVAL, 'bad')), 'errno=-22\n\n');
    assert.equal(formatFailure(new UapiError(0, 'no code')), `errno=-${ENOANO}\n\n`);
    assert.equal(formatFailure(Object.assign(new Error('bind'), { errno: -98, code: 'EADDRINUSE' })), 'errno=-98\n\n');
    assert.equal(formatFailure(new Error('other')), 'errno=-55\n\n');
    assert.equal(formatFailure(undefined), 'errno=-55\n\n');
    assert.equal(formatFailure('string'), 'errno=-55\n\n');
  });
});

describe('uapi messages never echo a value', () => {
  // A secret-looking value: what a private key sent to the wrong place looks like.
  const SECRET = `48c4${randomBytes(30).toString('hex')}`;
  /** Fails when `text` holds the secret or any 10 characters of it in a row. */
  const assertNoSecret = (text: string, what: string): void => {
    for (let i = 0; i + 10 <= SECRET.length; i++) {
      assert.ok(!text.includes(SECRET.slice(i, i + 10)), `${what}: the message quotes the value: ${text}`);
    }
  };
  /** Every message the stream gives for `input`: error messages and close reasons. */
  const messages = (input: string, limits = {}): string[] => {
    const stream = new UapiStream(limits);
    stream.push(Buffer.from(input, 'latin1'));
    const out: string[] = [];
    for (let c = stream.next(); c !== undefined; c = stream.next()) {
      if (c.kind === 'error') out.push(c.error.message);
      else if (c.kind === 'close') out.push(c.reason);
    }
    return out;
  };

  // [input, the key the message must name (undefined: none to name)]
  const set = (...lines: string[]): string => `set=1\n${lines.join('\n')}\n\n`;
  const cases: Array<[string, string | undefined]> = [
    [`private_key=${SECRET}\n\n`, 'private_key'], // without set=1: a key pasted as the request
    [`${SECRET}\n\n`, undefined],
    [`${SECRET}=1\n\n`, undefined],
    [`get=1\n${SECRET}\n\n`, undefined], // a trailing character, then the rest as an operation
    [set(`private_key=${SECRET.slice(0, 63)}`), 'private_key'],
    [set(`private_key=${SECRET.slice(0, 63)}x`), 'private_key'],
    [set(`private_key=${SECRET}0`), 'private_key'],
    [set(`public_key=${SECRET.slice(1)}`), 'public_key'],
    [set(`public_key=${P1}`, `preshared_key=${SECRET.slice(1)}`), 'preshared_key'],
    [set(`public_key=${P1}`, `preshared_key=${SECRET.slice(2)}zz`), 'preshared_key'],
    [set(`listen_port=${SECRET}`), 'listen_port'],
    [set(`fwmark=${SECRET}`), 'fwmark'],
    [set(`replace_peers=${SECRET}`), 'replace_peers'],
    [set(`privatekey=${SECRET}`), 'privatekey'],
    [set(SECRET), undefined],
    [set(`${SECRET}=1`), undefined],
    [set(`public_key=${P1}`, SECRET), undefined],
    [set(`public_key=${P1}`, `${SECRET}=${SECRET}`), undefined],
    [set(`public_key=${P1}`, `presharedkey=${SECRET}`), 'presharedkey'],
    [set(`public_key=${P1}`, `update_only=${SECRET}`), 'update_only'],
    [set(`public_key=${P1}`, `remove=${SECRET}`), 'remove'],
    [set(`public_key=${P1}`, `replace_allowed_ips=${SECRET}`), 'replace_allowed_ips'],
    [set(`public_key=${P1}`, `protocol_version=${SECRET}`), 'protocol_version'],
    [set(`public_key=${P1}`, `persistent_keepalive_interval=${SECRET}`), 'persistent_keepalive_interval'],
    [set(`public_key=${P1}`, `endpoint=${SECRET}`), 'endpoint'],
    [set(`public_key=${P1}`, `endpoint=[${SECRET}]:1`), 'endpoint'],
    [set(`public_key=${P1}`, `endpoint=${SECRET}:1`), 'endpoint'],
    [set(`public_key=${P1}`, `endpoint=198.18.0.2:${SECRET}`), 'endpoint'],
    [set(`public_key=${P1}`, `allowed_ip=${SECRET}`), 'allowed_ip'],
    [set(`public_key=${P1}`, `allowed_ip=${SECRET}/8`), 'allowed_ip'],
    [set(`public_key=${P1}`, `allowed_ip=-${SECRET}/8`), 'allowed_ip'],
    [set(`public_key=${P1}`, `allowed_ip=100.96.0.0/${SECRET}`), 'allowed_ip'],
    [set(`public_key=${P1}`, `remove=true`, `allowed_ip=${SECRET}`), 'allowed_ip'], // checked after remove too
    [set(`private_key=${SECRET.repeat(1100)}`), undefined], // a line past 64 KiB
  ];
  for (const [i, [input, key]] of cases.entries()) {
    test(`case ${i}: ${key ?? 'no key'}`, () => {
      const out = messages(input);
      assert.ok(out.length > 0, 'the stream says what is wrong');
      for (const message of out) assertNoSecret(message, input.slice(0, 40));
      if (key !== undefined) assert.ok(out.some((m) => m.includes(`${key}`)), `no message names ${key}: ${out.join(' | ')}`);
    });
  }

  test('a request past the size limit, and one without its blank line, quote nothing', () => {
    const big = messages(`set=1\n${`private_key=${SECRET}\n`.repeat(20)}\n`, { maxRequestBytes: 1000 });
    assert.equal(big.length, 1);
    assertNoSecret(big[0]!, 'too large');
    assert.deepEqual(messages(`set=1\nprivate_key=${SECRET}\n`), [], 'unfinished: nothing yet');
  });

  test('the operation message names the key and says the value is not shown', () => {
    assert.deepEqual(messages(`private_key=${SECRET}\n`), ['invalid operation "private_key" (the value is not shown)']);
  });
});
