// What the engine queues to send (handshake messages, cookie replies, keepalives,
// packets that waited for a handshake), sent through the control plane's UDP port a
// batch at a time.
import { sendCounted } from '../dataplane/queue-loop.js';
import type { UdpPort } from '../conn/udp-port.js';
import type { Logger } from '../log.js';
import { ADDR_ECN, ADDR_STRIDE, writeAddr } from '../pipeline/address.js';
import { BATCH_SIZE, PacketBatch, SLOT_SIZE } from '../pipeline/batch.js';
import { Drop } from '../protocol/drop-reasons.js';
import type { Engine } from '../protocol/engine.js';

export class Outbox {
  private readonly batch = new PacketBatch(BATCH_SIZE, SLOT_SIZE);

  constructor(private readonly engine: Engine, private readonly log: Logger) {}

  /** Sends and empties engine.outbox; what cannot be sent is counted as send_failed. */
  // Bounds: n < chunk.length ≤ BATCH_SIZE, the batch's slots, and offsets has ≥ slots entries (PacketBatch's constructor).
  flush(port: UdpPort): void {
    const { engine, batch } = this;
    const outbox = engine.outbox;
    while (outbox.length > 0) {
      const chunk = outbox.splice(0, BATCH_SIZE);
      batch.resetOffsets(0);
      let n = 0;
      for (const out of chunk) {
        if (out.packet.length > batch.slotSize) {
          engine.drops.add(Drop.SendFailed);
          continue;
        }
        batch.data.set(out.packet, batch.offsets[n]!);
        batch.lengths[n] = out.packet.length;
        const refused = out.peer !== undefined && engine.peerTable.sourceRefused(out.peer.id);
        writeAddr(batch.addrs, n, out.endpoint.address, out.endpoint.port, refused ? undefined : out.endpoint.local);
        batch.addrs[n * ADDR_STRIDE + ADDR_ECN] = out.ecn ?? 0;
        n++;
      }
      batch.count = n;
      if (n > 0) sendCounted(port, batch, engine.drops, this.log);
    }
  }
}
