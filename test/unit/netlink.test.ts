// rtnetlink for the sticky sources' route checks (src/io/netlink.ts, native/netlink.cc):
// route look-ups answered by this host's kernel (they send nothing), and the events'
// parsing on messages made here (a test in the host's namespace changes no route).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFd } from '../../src/io/fd.js';
import { netlinkOpen, netlinkRecv, netlinkSend, readNetlinkMessages, writeRouteQuery, type RouteAnswer, type RouteQuery } from '../../src/io/netlink.js';

/** Asks the kernel `queries` on a fresh socket; its answers, by sequence number 1, 2, … */
async function ask(queries: RouteQuery[]): Promise<RouteAnswer[]> {
  const fd = netlinkOpen(0);
  try {
    const request = new Uint8Array(queries.length * 80);
    let at = 0;
    queries.forEach((q, i) => { at = writeRouteQuery(request, at, i + 1, q); });
    netlinkSend(fd, request.subarray(0, at));
    const answers: RouteAnswer[] = [];
    const buf = new Uint8Array(65536);
    for (let tries = 0; answers.length < queries.length && tries < 200; tries++) {
      const n = netlinkRecv(fd, buf);
      if (n > 0) answers.push(...readNetlinkMessages(buf, n, 'answers').answers);
      else await new Promise((r) => setTimeout(r, 5));
    }
    return answers.sort((a, b) => a.seq - b.seq);
  } finally {
    closeFd(fd);
  }
}

test('route look-ups: to and from loopback leave through lo; a source that is not on this host cannot send', async () => {
  const answers = await ask([
    { destination: '127.0.0.1', mark: 0 },
    { destination: '127.0.0.2', source: '127.0.0.1', mark: 0 },
    { destination: '::1', source: '::1', mark: 0 },
    { destination: '127.0.0.1', source: '198.18.255.254', mark: 0 },
  ]);
  assert.equal(answers.length, 4, JSON.stringify(answers));
  assert.deepEqual(answers.slice(0, 3), [{ seq: 1, oif: 1 }, { seq: 2, oif: 1 }, { seq: 3, oif: 1 }], 'lo is interface 1');
  assert.ok('errno' in answers[3]! && answers[3].errno > 0, `a foreign source is refused: ${JSON.stringify(answers[3])}`);
});

/** One netlink message of `type` with `body`. */
function message(type: number, seq: number, body: number[]): number[] {
  const length = 16 + body.length;
  const header = new Uint8Array(16);
  const v = new DataView(header.buffer);
  v.setUint32(0, length, true);
  v.setUint16(4, type, true);
  v.setUint32(8, seq, true);
  return [...header, ...body, ...new Array((4 - (length % 4)) % 4).fill(0)];
}

test('events: an address removed names the address; a route added or removed is a change, whatever its sequence number', () => {
  const RTM_DELADDR = 21;
  const RTM_NEWROUTE = 24;
  // ifaddrmsg (family AF_INET6, prefix 64, …) and IFA_ADDRESS fd7a:7d0:ff::3.
  const v6 = [0xfd, 0x7a, 0x07, 0xd0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
  const delAddr6 = message(RTM_DELADDR, 7, [10, 64, 0, 0, 2, 0, 0, 0, 20, 0, 1, 0, ...v6]);
  // AF_INET with IFA_ADDRESS and IFA_LOCAL: the local one is the host's.
  const delAddr4 = message(RTM_DELADDR, 0, [2, 24, 0, 0, 2, 0, 0, 0, 8, 0, 1, 0, 198, 18, 0, 9, 8, 0, 2, 0, 198, 18, 0, 3]);
  const newRoute = message(RTM_NEWROUTE, 12, [2, 32, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
  const buf = new Uint8Array([...delAddr6, ...delAddr4, ...newRoute]);
  const events = readNetlinkMessages(buf, buf.length, 'events');
  assert.deepEqual(events, { answers: [], changed: true, removed: ['fd7a:7d0:ff::3', '198.18.0.3'] });
  const onlyRoute = new Uint8Array(newRoute);
  assert.deepEqual(readNetlinkMessages(onlyRoute, onlyRoute.length, 'events'), { answers: [], changed: true, removed: [] });
  assert.deepEqual(readNetlinkMessages(onlyRoute, onlyRoute.length, 'answers'), { answers: [{ seq: 12, oif: 0 }], changed: false, removed: [] });
  // A length past the buffer ends the read.
  const cut = buf.subarray(0, delAddr6.length + 10);
  assert.deepEqual(readNetlinkMessages(cut, cut.length, 'events').removed, ['fd7a:7d0:ff::3']);
});
