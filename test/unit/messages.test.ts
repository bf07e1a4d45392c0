// Message decoders: exact sizes, types and reserved bytes; random input never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Drop } from '../../src/protocol/drop-reasons.js';
import {
  classifyMessage, decodeCookieReply, decodeInitiation, decodeResponse, decodeTransportHeader,
  encodeCookieReply, encodeInitiation, encodeResponse, writeTransportHeader,
} from '../../src/protocol/messages.js';

const rand = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

test('initiation, response and cookie reply round-trip through encode and decode', () => {
  const init = { sender: 0xdeadbeef, ephemeral: rand(32), encryptedStatic: rand(48), encryptedTimestamp: rand(28), mac1: rand(16), mac2: rand(16) };
  const bytes = encodeInitiation(init);
  assert.equal(bytes.length, 148);
  assert.deepEqual(Array.from(bytes.subarray(0, 4)), [1, 0, 0, 0]);
  assert.deepEqual(decodeInitiation(bytes), init);

  const resp = { sender: 7, receiver: 0xffffffff, ephemeral: rand(32), encryptedNothing: rand(16), mac1: rand(16), mac2: rand(16) };
  const rbytes = encodeResponse(resp);
  assert.equal(rbytes.length, 92);
  assert.deepEqual(decodeResponse(rbytes), resp);

  const cookie = { receiver: 42, nonce: rand(24), encryptedCookie: rand(32) };
  const cbytes = encodeCookieReply(cookie);
  assert.equal(cbytes.length, 64);
  assert.deepEqual(decodeCookieReply(cbytes), cookie);
});

test('transport header: receiver and 64-bit counter, little-endian', () => {
  const buf = new Uint8Array(40);
  writeTransportHeader(buf, 0, 0x01020304, 0xfffffffe, 0x80000001);
  assert.equal(Buffer.from(buf.subarray(0, 16)).toString('hex'), '0400000004030201feffffff01000080');
  assert.deepEqual(decodeTransportHeader(buf.subarray(0, 32)), { receiver: 0x01020304, counterLo: 0xfffffffe, counterHi: 0x80000001 });
});

test('sizes: handshake messages exact, transport at least 32 bytes', () => {
  const cases: [number, number, number | { drop: number }][] = [
    [1, 148, 1], [1, 147, { drop: Drop.TooShort }], [1, 149, { drop: Drop.WrongSize }],
    [2, 92, 2], [2, 91, { drop: Drop.TooShort }], [2, 93, { drop: Drop.WrongSize }],
    [3, 64, 3], [3, 63, { drop: Drop.TooShort }], [3, 65, { drop: Drop.WrongSize }],
    [4, 32, 4], [4, 31, { drop: Drop.TooShort }], [4, 1500, 4], [4, 65535, 4], [4, 65536, { drop: Drop.WrongSize }],
    [0, 100, { drop: Drop.UnknownType }], [5, 148, { drop: Drop.UnknownType }], [255, 32, { drop: Drop.UnknownType }],
  ];
  for (const [type, length, expected] of cases) {
    const buf = new Uint8Array(length);
    buf[0] = type;
    assert.deepEqual(classifyMessage(buf, 0, length), expected, `type ${type} length ${length}`);
  }
  for (let n = 0; n < 4; n++) assert.deepEqual(classifyMessage(new Uint8Array(n), 0, n), { drop: Drop.TooShort });
});

test('any non-zero reserved byte rejects the message', () => {
  for (const [type, size] of [[1, 148], [2, 92], [3, 64], [4, 32]] as const) {
    for (let i = 1; i < 4; i++) {
      const buf = new Uint8Array(size);
      buf[0] = type;
      buf[i] = 1;
      assert.deepEqual(classifyMessage(buf, 0, size), { drop: Drop.ReservedNotZero });
    }
  }
});

test('a decoder handed another type reports it, not a misparse', () => {
  const init = new Uint8Array(148);
  init[0] = 1;
  assert.deepEqual(decodeResponse(init), { drop: Drop.UnknownType });
  const transport = new Uint8Array(92);
  transport[0] = 4;
  assert.deepEqual(decodeResponse(transport), { drop: Drop.UnknownType });
});

test('classify works at an offset inside a larger buffer', () => {
  const buf = new Uint8Array(300).fill(9);
  buf.set([2, 0, 0, 0], 100);
  assert.equal(classifyMessage(buf, 100, 92), 2);
});

test('random input never throws from any decoder (bounded fuzz)', () => {
  const decoders = [decodeInitiation, decodeResponse, decodeCookieReply, decodeTransportHeader];
  for (let i = 0; i < 20_000; i++) {
    // Bias toward plausible prefixes and the sizes that matter.
    const sizes = [0, 1, 3, 4, 31, 32, 33, 63, 64, 65, 91, 92, 93, 147, 148, 149, 1500];
    const length = i % 3 === 0 ? sizes[i % sizes.length]! : Math.floor(Math.random() * 200);
    const buf = rand(length);
    if (length > 0 && i % 2 === 0) buf[0] = 1 + (i % 5);
    if (length > 3 && i % 4 === 0) buf.fill(0, 1, 4);
    const type = classifyMessage(buf, 0, length);
    assert.ok(typeof type === 'number' ? type >= 1 && type <= 4 : type.drop > 0);
    for (const decode of decoders) {
      const result = decode(buf);
      assert.ok(typeof result === 'object' && result !== null);
    }
  }
});
