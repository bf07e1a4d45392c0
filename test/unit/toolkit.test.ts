// The toolkit API as a user of the package sees it: `tundra` and `tundra/stage`
// resolve through package.json "exports", with type declarations next to them, and a
// dataplane assembled from the exported pieces alone seals a batch the other end opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const pkgDir = dirname(createRequire(import.meta.url).resolve('tundra/package.json'));

test('"tundra" and "tundra/stage" resolve, with .d.ts files', async () => {
  const tundra = await import('tundra');
  for (const name of ['PacketBatch', 'KeyTable', 'PeerTable', 'RouteTable', 'OutboundStage', 'InboundStage', 'EngineControl', 'Engine', 'Device', 'UserStages', 'aeadBackend', 'SpscRing', 'MpmcRing', 'QueueLoop', 'QueueWorkers', 'ChannelWriter', 'ChannelReader']) {
    assert.equal(typeof (tundra as Record<string, unknown>)[name], 'function', `tundra exports ${name}`);
  }
  await import('tundra/stage');
  for (const file of ['dist/src/index.d.ts', 'dist/src/stages/user-stage.d.ts']) assert.ok(existsSync(join(pkgDir, file)), file);
});

test('a dataplane from the exported pieces: two engines, the stage kernels, one AEAD backend', async () => {
  const t = await import('tundra');
  const { generatePrivateKey } = await import('../../src/crypto/keys.js');
  const a = new t.Engine({ privateKey: generatePrivateKey() });
  const b = new t.Engine({ privateKey: generatePrivateKey() });
  const ea = { address: '198.18.0.1', port: 1 };
  const eb = { address: '198.18.0.2', port: 2 };
  const pa = a.addPeer(b.publicKey!, { endpoint: eb });
  const pb = b.addPeer(a.publicKey!, { endpoint: ea });
  a.allowedIPs.insert(t.parsePrefix('100.96.0.2/32'), pa);
  b.allowedIPs.insert(t.parsePrefix('100.96.0.1/32'), pb);
  a.initiateHandshake(pa, false);
  b.receive(a.outbox.splice(0)[0]!.packet, ea);
  a.receive(b.outbox.splice(0)[0]!.packet, eb);
  const aead = t.aeadBackend('noble');
  const batch = new t.PacketBatch(4, t.SLOT_SIZE);
  batch.resetOffsets(t.HEADROOM);
  const packet = Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 100, 96, 0, 1, 100, 96, 0, 2]);
  batch.data.set(packet, batch.offsets[0]!);
  batch.lengths[0] = packet.length;
  batch.count = 1;
  assert.equal(new t.OutboundStage(4).run(batch, t.outboundContextOf(a, aead.seal), new t.EngineControl(a)), 1);
  const datagram = batch.data.slice(batch.offsets[0]!, batch.offsets[0]! + batch.lengths[0]!);
  const inbound = new t.PacketBatch(4, t.SLOT_SIZE);
  inbound.resetOffsets(0);
  inbound.data.set(datagram, 0);
  inbound.lengths[0] = datagram.length;
  t.writeAddr(inbound.addrs, 0, ea.address, ea.port);
  inbound.count = 1;
  assert.equal(new t.InboundStage(4).run(inbound, t.inboundContextOf(b, t.aeadBackend('native').open), new t.EngineControl(b)), 1);
  assert.deepEqual(inbound.data.subarray(inbound.offsets[0]!, inbound.offsets[0]! + inbound.lengths[0]!), packet);
});
