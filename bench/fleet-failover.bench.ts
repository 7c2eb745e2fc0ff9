/**
 * Fleet at scale across the edge-pair topology, one edge killed mid-run. Debian's mosquitto
 * three times on loopback: edges A and B, each bridging `fghv/#` out to central C (MQTT 5
 * bridges). N simulated devices (test/helpers/fleet-sim.ts: the real contract, signed
 * decisions, health, availability with will, a failover URL list, an outbox stand-in), half
 * starting on each edge. A consumer and the fleet console (daemon/cli/fleet.ts) sit on C. A is killed
 * (SIGKILL) at KILL_AT_S; decisions stop at RUN_S; then up to BACK_MAX_S for every device of
 * A to be connected again, and DRAIN_S to settle.
 *
 * Usage: node dist/bench/fleet-failover.bench.js [N] [RUN_S]   (default 10000, 60)
 * Prints one Markdown block for bench/fleet.md. Latency = receive time at C - `sent_ms` in the
 * payload (same clock). Loss = decisions made - distinct (device, seq) at C (live or audit).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { connectAsync } from 'mqtt';
import { FleetConsole } from '../daemon/cli/fleet.js';
import { percentile } from '../daemon/telemetry/latency.js';
import { startSimFleet } from '../test/helpers/fleet-sim.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';

const N = Number(process.argv[2] ?? 10_000);
const RUN_S = Number(process.argv[3] ?? 60);
const KILL_AT_S = Math.round(RUN_S / 3);
const DRAIN_S = 10;
const BACK_MAX_S = 90;
const DECISION_EVERY_MS = 20_000;
const HEALTH_EVERY_MS = 20_000;

const rssMb = (pid: number | null) => {
  if (pid === null) return null;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
};
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (v: number | null, d = 0) => (v === null ? 'n/a' : v.toFixed(d));

const loadBefore = load();
const bridge = (name: string, port: number) =>
  `connection ${name}\naddress 127.0.0.1:${port}\nremote_clientid ${name}\nbridge_protocol_version mqttv50\ncleansession true\nrestart_timeout 1\ntopic fghv/# out 1\nmax_queued_messages 100000\n`;
const c = await startMosquitto({ extraConfig: 'max_queued_messages 100000\n' });
const a = await startMosquitto({ extraConfig: `max_queued_messages 100000\n${bridge('edge-a', c.port)}` });
const b = await startMosquitto({ extraConfig: `max_queued_messages 100000\n${bridge('edge-b', c.port)}` });
const idle = { a: rssMb(a.pid), b: rssMb(b.pid), c: rssMb(c.pid) };

// Consumer on C: decisions live and audit, health; latency from sent_ms.
const seen = new Set<string>();
const liveSeen = new Set<string>();
let liveDup = 0;
let received = 0;
const latPre: number[] = [];
const latPost: number[] = [];
let killedAt = Number.POSITIVE_INFINITY;
const consumer = await connectAsync(c.url, {
  protocolVersion: 5,
  clientId: 'bench-consumer',
  reconnectPeriod: 1000,
});
consumer.on('message', (topic, payload) => {
  received++;
  if (topic.endsWith('/health')) return;
  const p = JSON.parse(payload.toString()) as { device_id: string; seq: number; sent_ms?: number };
  const key = `${p.device_id}:${p.seq}`;
  seen.add(key);
  if (topic.endsWith('/decision')) {
    if (liveSeen.has(key)) liveDup++;
    liveSeen.add(key);
    if (p.sent_ms) (Date.now() < killedAt ? latPre : latPost).push(Date.now() - p.sent_ms);
  }
});
await consumer.subscribeAsync(['fghv/+/+/decision', 'fghv/+/audit', 'fghv/+/health'], { qos: 1 });

const fleet = await FleetConsole.start({
  brokerUrl: c.url,
  prefix: 'fghv',
  host: '127.0.0.1',
  port: 0,
  tokenFile: null,
  pinnedKeysFile: null,
  connections: 2,
});

const heapBefore = process.memoryUsage().rss / 2 ** 20;
const t0 = Date.now();
const sim = await startSimFleet({
  urls: [a.url, b.url],
  n: N,
  decisionEveryMs: DECISION_EVERY_MS,
  healthEveryMs: HEALTH_EVERY_MS,
  batch: 200,
  stamp: () => ({ sent_ms: Date.now() }),
});
const connectMs = Date.now() - t0;
const simRss = process.memoryUsage().rss / 2 ** 20 - heapBefore;
const started = Date.now();
const onA = sim.devices.filter((d) => d.urlIndex % 2 === 0);

// Console update latency: a decision published now, until the console's state shows it.
const consoleLat: number[] = [];
let consoleMissed = 0;
const probe = async (i: number) => {
  const d = sim.devices[i];
  if (!d?.client.connected) return;
  const t = Date.now();
  const seq = sim.decide(i);
  while ((fleet.state.device_view(d.id)?.last_decision?.seq ?? 0) < seq && Date.now() - t < 10_000)
    await sleep(10);
  if ((fleet.state.device_view(d.id)?.last_decision?.seq ?? 0) >= seq) consoleLat.push(Date.now() - t);
  else consoleMissed++;
};

let receivedAtKill = 0;
let receivedAtWarm = 0;
let warmAt = 0;
const memLoaded = { a: null as number | null, b: null as number | null, c: null as number | null };
let apiMs = 0;
let apiBytes = 0;
for (let s = 1; s <= RUN_S; s++) {
  await sleep(started + s * 1000 - Date.now());
  if (s === 5) {
    receivedAtWarm = received;
    warmAt = Date.now();
  }
  if (s % 3 === 0) void probe((s * 7919) % N);
  if (s === KILL_AT_S - 1) {
    Object.assign(memLoaded, { a: rssMb(a.pid), b: rssMb(b.pid), c: rssMb(c.pid) });
    const t = Date.now();
    const snap = JSON.stringify(fleet.state.snapshot());
    apiMs = Date.now() - t;
    apiBytes = snap.length;
  }
  if (s === KILL_AT_S) {
    receivedAtKill = received;
    killedAt = Date.now();
    await a.kill();
  }
}
const steadyRate = Math.round((receivedAtKill - receivedAtWarm) / ((killedAt - warmAt) / 1000));
const isBack = (d: (typeof onA)[number]) => d.lastConnectAt > killedAt && d.client.connected;
const backByRunEnd = onA.filter(isBack).length;
sim.stop(); // no more decisions; connections stay open while what is in flight settles
const stoppedAt = Date.now();
while (!onA.every(isBack) && Date.now() - stoppedAt < BACK_MAX_S * 1000) await sleep(500);
const backMs = onA
  .filter(isBack)
  .map((d) => d.lastConnectAt - killedAt)
  .sort((x, y) => x - y);
await sleep(DRAIN_S * 1000);
const pendingAtEnd = sim.pending();
await sim.close();
const made = sim.sent.decisions;
const lost = made - seen.size;
const missingOf = (ds: typeof sim.devices) =>
  ds.reduce((n, d) => {
    for (let s = 1; s <= d.seq; s++) if (!seen.has(`${d.id}:${s}`)) n++;
    return n;
  }, 0);
const lostA = missingOf(onA);
const snap = fleet.state.snapshot();
const verified = snap.devices.filter((d) => d.last_decision?.verified).length;
latPre.sort((x, y) => x - y);
latPost.sort((x, y) => x - y);
consoleLat.sort((x, y) => x - y);
const p = (xs: number[], q: number) => fmt(percentile(xs, q));
const lines = [
  `Run: ${N} devices, ${RUN_S} s (edge A killed at ${KILL_AT_S} s), then until every device is back (at most ${BACK_MAX_S} s) and ${DRAIN_S} s to settle; ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, Node ${process.version}, ${new Date().toISOString()}; load average before ${loadBefore}, after ${load()}.`,
  '',
  '| figure | value |',
  '|---|---|',
  `| connect all ${N} devices (one MQTT 5 connection each, 200 at a time) | ${connectMs} ms |`,
  `| messages/s received at the central consumer (steady, before the kill) | ${steadyRate} |`,
  `| decision latency device -> edge -> bridge -> central, p50 / p95 / p99, before the kill | ${p(latPre, 0.5)} / ${p(latPre, 0.95)} / ${p(latPre, 0.99)} ms (n = ${latPre.length}) |`,
  `| the same after the kill | ${p(latPost, 0.5)} / ${p(latPost, 0.95)} / ${p(latPost, 0.99)} ms (n = ${latPost.length}) |`,
  `| decisions made / distinct at the centre (live or audit) / lost | ${made} / ${seen.size} / ${lost} |`,
  `| of the lost: devices that started on A (killed) / on B | ${lostA} / ${lost - lostA} |`,
  `| decisions that arrived twice as live | ${liveDup} |`,
  `| decisions still unacknowledged by a broker at the end | ${pendingAtEnd} |`,
  `| re-sent on audit after reconnect (outbox stand-in) | ${sim.sent.resent} |`,
  `| devices of edge A connected again (on B): by the end of the run / ${BACK_MAX_S} s later at most | ${backByRunEnd} / ${backMs.length} of ${onA.length} |`,
  `| time back after the kill, p50 / p95 / max | ${p(backMs, 0.5)} / ${p(backMs, 0.95)} / ${fmt(backMs.at(-1) ?? null)} ms |`,
  `| mosquitto RSS idle -> loaded, A / B / C | ${fmt(idle.a, 1)} -> ${fmt(memLoaded.a, 1)} / ${fmt(idle.b, 1)} -> ${fmt(memLoaded.b, 1)} / ${fmt(idle.c, 1)} -> ${fmt(memLoaded.c, 1)} MB |`,
  `| broker memory per connection (edges, loaded - idle) | ${fmt((((memLoaded.a ?? 0) + (memLoaded.b ?? 0) - (idle.a ?? 0) - (idle.b ?? 0)) * 1024) / N, 1)} kB |`,
  `| simulator memory per device (Node RSS growth while connecting / N) | ${fmt((simRss * 1024) / N, 1)} kB |`,
  `| console update latency (publish -> console state), p50 / p95 / max | ${p(consoleLat, 0.5)} / ${p(consoleLat, 0.95)} / ${fmt(consoleLat.at(-1) ?? null)} ms (n = ${consoleLat.length}, not shown within 10 s: ${consoleMissed}) |`,
  `| console: /api/fleet snapshot of ${snap.totals.devices} devices | ${apiMs} ms to build, ${(apiBytes / 2 ** 20).toFixed(1)} MB |`,
  `| console: devices with last decision verified at the end | ${verified} of ${snap.totals.devices} |`,
];
console.log(lines.join('\n'));
await fleet.close();
await consumer.endAsync(true);
await Promise.all([b.stop(), c.stop()]);
process.exit(0);
