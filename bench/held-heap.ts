import { EventEmitter } from 'node:events';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BodilessExchange } from '../src/tunnel/bodiless-exchange.js';
import type { ReadyEndpoint } from '../src/domain/status-types.js';
import * as ownPicker from '../src/proxy/replica-picker.js';
import { directHost } from './direct-host.js';

/**
 * What the agent's own objects for one open exchange hold in the JS heap, one part at a time (the
 * snapshots of bench/heap-snapshot.ts see the whole agent, where a change of ~0.2 KiB per stream
 * drowns in the rounds' spread):
 *
 * - a streamed answer (a head with one SSE event, then a second event, the agent's four listeners
 *   on it) sent by a bodiless exchange itself, and
 *   the same through the TunnelStream the exchange turns into (`toStream`, the way every streamed
 *   answer went before the eighth session);
 * - the replica picker's count of one request still open (`begin`, then a stream not closed yet),
 *   for this checkout and, given one, a baseline checkout built with `npm run bench -- none`.
 *
 *   npm run bench -- none && node dist-bench/bench/held-heap.js [baseline checkout]
 *
 * Each reading holds COUNT of them and takes the heap used after full GCs, before and after.
 */
const COUNT = 20_000;
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/**
 * Heap bytes held per item while `make` builds COUNT items (kept alive until the reading, which
 * comes after the event-loop turns they scheduled: a streamed head leaves at the next one).
 */
async function heldPerItem<T>(make: (i: number) => T, then?: (item: T) => void): Promise<number> {
  const kept: T[] = new Array<T>(COUNT);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < COUNT; i++) kept[i] = make(i);
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (then !== undefined) {
    for (const item of kept) then(item);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (kept.length !== COUNT) throw new Error('unreachable');
  return (after - before) / COUNT;
}

const host = directHost();

const event = Buffer.from('data: {"n":1}\n\n');
const listener = (): void => undefined;
const streamedAnswer = (viaStream: boolean) => (i: number): BodilessExchange => {
  const exchange = new BodilessExchange(i + 1, host);
  // The listeners the agent gives every exchange: an `error` sink, and on `close` its request
  // metrics, the upstream exchange's abort and the replica picker's count.
  exchange.on('error', listener);
  for (let n = 0; n < 3; n++) exchange.on('close', () => listener());
  const writer = viaStream ? exchange.toStream() : exchange;
  writer.sendResponse(200, { 'content-type': 'text/event-stream' });
  writer.write(event);
  return exchange;
};
/** The next event of a streamed answer, after its head left with the first one. */
const nextEvent = (viaStream: boolean) => (exchange: BodilessExchange): void => {
  (viaStream ? exchange.toStream() : exchange).write(event);
};

type PickerModule = typeof ownPicker;
const openRequest = (picker: InstanceType<PickerModule['ReplicaPicker']>) => (i: number) => {
  const stream = Object.assign(new EventEmitter(), { destroyed: false });
  const ep: ReadyEndpoint = { serviceId: 'svc', replicaIndex: i % 3, containerId: `container-${i % 3}`, host: `172.17.0.${2 + (i % 3)}`, port: 8080 };
  picker.begin(ep)(stream);
  return stream;
};

const line = (what: string, bytes: number) => process.stdout.write(`${what}: ${bytes.toFixed(0)} B\n`);
// Warm each path once, so that what it compiles is not counted.
await heldPerItem(streamedAnswer(false), nextEvent(false));
await heldPerItem(streamedAnswer(true), nextEvent(true));
line('a streamed answer sent by its bodiless exchange', await heldPerItem(streamedAnswer(false), nextEvent(false)));
line('the same through the TunnelStream it turns into', await heldPerItem(streamedAnswer(true), nextEvent(true)));
const streamAlone = await heldPerItem(() => Object.assign(new EventEmitter(), { destroyed: false }));
const pickers: Array<[string, PickerModule]> = [['this checkout', ownPicker]];
const base = process.argv[2];
if (base !== undefined) pickers.push([`baseline ${base}`, (await import(pathToFileURL(path.resolve(base, 'dist-bench', 'src', 'proxy', 'replica-picker.js')).href)) as PickerModule]);
for (const [name, module] of pickers) {
  await heldPerItem(openRequest(new module.ReplicaPicker()));
  line(`the replica picker's count of one open request, ${name} (its stream's own ${streamAlone.toFixed(0)} B left out)`, (await heldPerItem(openRequest(new module.ReplicaPicker()))) - streamAlone);
}
