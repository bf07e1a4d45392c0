// tundra's toolkit API (package "tundra"): the pieces a dataplane is built from —
// batches in shared memory, the shared key/peer/route tables, the outbound and
// inbound stage kernels with their control-plane half, the AEAD backends, the
// protocol engine and the device that wires them to a TUN and a UDP socket — and
// the contract of a user stage (also on its own as "tundra/stage").
// README.md § "The toolkit" shows how they fit.
export { PacketBatch, HEADROOM, TAILROOM, SLOT_SIZE, BATCH_SIZE } from './pipeline/batch.js';
export { ADDR_STRIDE, readAddr, writeAddr } from './pipeline/address.js';
export { SpscRing, MpmcRing, type RingShared } from './pipeline/ring.js';
export { KeyTable, KEY_SLOTS, KEY_SLOT_BITS, type KeyTableShared } from './protocol/key-table.js';
export { PeerTable, MAX_PEERS, type PeerTableShared } from './protocol/peer-table.js';
export { PeerTableFullError } from './errors.js';
export { carveScratch, type ScratchSpec, type ScratchArrays } from './pipeline/scratch.js';
export { RouteTable } from './routing/route-table.js';
export { AllowedIPs } from './routing/allowed-ips.js';
export { parsePrefix, formatPrefix, type Prefix } from './routing/prefix.js';
export { OutboundStage, type OutboundContext, type OutboundControl } from './stages/outbound.js';
export { InboundStage, type InboundContext, type InboundControl } from './stages/inbound.js';
export { EngineControl, inboundContextOf, outboundContextOf } from './stages/engine-control.js';
export type { BatchStages } from './stages/batch-stages.js';
export { aeadBackend, parseCryptoBackend, CRYPTO_BACKENDS, type AeadBackend, type CryptoBackendName } from './crypto/backends.js';
export { DESC_STRIDE, DESC_OFFSET, DESC_LENGTH, DESC_KEY_INDEX, DESC_COUNTER_LO, DESC_COUNTER_HI, type SealBatch, type OpenBatch } from './crypto/native-aead.js';
export { Engine, type EngineOptions } from './protocol/engine.js';
export { Drop, DROP_REASON_NAMES, DropCounters, type DropReason } from './protocol/drop-reasons.js';
export { Device, type DeviceOptions } from './device/device.js';
export { QueueLoop, QueueStats, type QueueLoopOptions, type ControlTables } from './dataplane/queue-loop.js';
export { CryptoPool, type CryptoPoolShared } from './dataplane/crypto-pool.js';
export { QueueWorkers, type QueueWorkersOptions } from './dataplane/queue-workers.js';
export { ChannelReader, ChannelWriter, createControlChannel, type ControlChannelShared } from './dataplane/control-channel.js';
export { OffloadCounters } from './offload/counters.js';
export { UserStages, parseStageSpecs, type StageSpec } from './stages/user-host.js';
export * from './stages/user-stage.js';
