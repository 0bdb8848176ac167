// Pins the discovery server's send pacer: FIFO across streams, a byte budget per event-loop turn, a
// byte budget handed over and not yet flushed, skipped sends of closed streams, never a synchronous write.

import { describe, expect, it } from 'vitest';
import { SendPacer, type PacedSend } from '../../../controller/src/discovery/send-pacer.ts';

interface Recorded extends PacedSend {
  readonly name: string;
  cancelled: boolean;
  flush(): void;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function harness(bytesPerTurn: number, bytesInTransit: number): { pacer: SendPacer; written: string[]; send(name: string, bytes: number): Recorded } {
  const pacer = new SendPacer({ bytesPerTurn, bytesInTransit });
  const written: string[] = [];
  return {
    pacer,
    written,
    send(name, bytes) {
      let flushed: (() => void) | undefined;
      const send: Recorded = {
        name,
        bytes,
        cancelled: false,
        write(done) {
          written.push(name);
          flushed = done;
        },
        flush() {
          flushed?.();
        },
      };
      pacer.enqueue(send);
      return send;
    },
  };
}

describe('SendPacer', () => {
  it('writes nothing synchronously, then in order, at most a turn’s budget per event-loop turn', async () => {
    const h = harness(100, 10_000);
    const sends = ['a', 'b', 'c', 'd', 'e'].map((name) => h.send(name, 40));
    expect(h.written).toEqual([]);
    await turn();
    expect(h.written).toEqual(['a', 'b']);
    await turn();
    expect(h.written).toEqual(['a', 'b', 'c', 'd']);
    await turn();
    expect(h.written).toEqual(['a', 'b', 'c', 'd', 'e']);
    for (const send of sends) send.flush();
    expect(h.pacer.inTransit).toBe(0);
  });

  it('writes one response per turn whatever its size', async () => {
    const h = harness(100, 100);
    h.send('huge', 1_000);
    h.send('small', 1);
    await turn();
    expect(h.written).toEqual(['huge']);
  });

  it('waits for flushes when the bytes handed over and not yet flushed reach the budget, and stays in order', async () => {
    const h = harness(10_000, 100);
    const a = h.send('a', 60);
    h.send('b', 60);
    h.send('c', 10);
    await turn();
    // c would fit, but not before b: a wave is served in order.
    expect(h.written).toEqual(['a']);
    await turn();
    expect(h.written).toEqual(['a']);
    a.flush();
    // Idempotent: a stream that closes after its flush releases nothing twice.
    a.flush();
    await turn();
    expect(h.written).toEqual(['a', 'b', 'c']);
    expect(h.pacer.inTransit).toBe(70);
  });

  it('skips the sends of streams that closed while they waited', async () => {
    const h = harness(10_000, 10_000);
    h.send('a', 1);
    const b = h.send('b', 1);
    h.send('c', 1);
    b.cancelled = true;
    await turn();
    expect(h.written).toEqual(['a', 'c']);
    expect(h.pacer.queued).toBe(0);
  });

  it('serves a queue of thousands in order', async () => {
    const h = harness(64 * 1024, 1024 * 1024);
    const sends = Array.from({ length: 5_000 }, (_, i) => h.send(String(i), 300 * 1024));
    while (h.written.length < sends.length) {
      await turn();
      // The budget in transit holds three 300 KiB responses; flush them as a connection would.
      for (const send of sends.slice(0, h.written.length)) send.flush();
    }
    expect(h.written).toEqual(sends.map((send) => send.name));
  });
});
