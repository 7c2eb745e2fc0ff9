/**
 * An in-process MQTT broker (aedes) for a kiosk without a site broker: `mqtt.url: null`.
 * aedes 1.x speaks MQTT 3.1.1 only (it refuses a v5 CONNECT with return code 1), so the link
 * falls back to protocol 4 against it.
 */
import net from 'node:net';
import { ErrorCodes, KioskError } from '../errors.js';

export interface EmbeddedBroker {
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(host: string, port: number): Promise<EmbeddedBroker> {
  // aedes 1.x is ESM-only and heavy: load it only when the embedded broker is used.
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? `${host}:${port} is already in use (is another MQTT broker, e.g. mosquitto, running there?); ` +
          `set mqtt.url to use that broker (e.g. mqtt://${host}:${port}) or choose another mqtt.embedded_port`
        : `cannot listen on ${host}:${port} (${code ?? String(cause)})`;
    throw new KioskError(ErrorCodes.MQTT_BROKER_START, `embedded MQTT broker not started: ${why}`, {
      cause,
      details: { host, port, code },
    });
  }
  const bound = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    host,
    port: bound,
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close() {
      closing ??= (async () => {
        // broker.close() ends every client connection; server.close() then completes.
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
