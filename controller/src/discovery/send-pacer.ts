// Hands responses to their streams in the order they were due (FIFO across streams), a bounded
// number of bytes per event-loop turn and a bounded number not yet flushed to the connection.
// A reconnect wave of thousands of proxies is so served in order, without one turn encoding or
// buffering every table at once, and each response's ACK deadline starts only when it is handed over.

export interface PacedSend {
  /** Encoded size, what the budgets count; read once, just before `write`. */
  readonly bytes: number;
  /**
   * Hands the response to the stream. Calls `flushed` once the bytes have left the stream's
   * buffer (or the stream is gone); the pacer keeps them in its in-transit budget until then.
   */
  write(flushed: () => void): void;
  /** True once the stream closed while this waited: it is skipped. */
  readonly cancelled: boolean;
}

export interface SendPacerOptions {
  /** Bytes handed to streams per event-loop turn (at least one response per turn whatever its size). */
  bytesPerTurn: number;
  /** Bytes handed to streams and not yet flushed (at least one response whatever its size). */
  bytesInTransit: number;
}

export const DEFAULT_PACING: SendPacerOptions = { bytesPerTurn: 4 * 1024 * 1024, bytesInTransit: 32 * 1024 * 1024 };

export class SendPacer {
  readonly #options: SendPacerOptions;
  // An array with a moving head: a wave queues thousands, and shift() on each would be quadratic.
  #queue: (PacedSend | undefined)[] = [];
  #head = 0;
  #inTransit = 0;
  #scheduled: NodeJS.Immediate | undefined;

  constructor(options: SendPacerOptions = DEFAULT_PACING) {
    this.#options = options;
  }

  /** Responses waiting to be handed to their streams. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Bytes handed over and not yet flushed. */
  get inTransit(): number {
    return this.#inTransit;
  }

  enqueue(send: PacedSend): void {
    this.#queue.push(send);
    this.#schedule();
  }

  #schedule(): void {
    // Never synchronously: the caller (a stream's pump) finishes its bookkeeping first, and
    // everything due in this turn is queued before the first write.
    if (this.#scheduled !== undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.#drain();
    });
  }

  #drain(): void {
    let turn = 0;
    while (this.#head < this.#queue.length) {
      const send = this.#queue[this.#head] as PacedSend;
      if (send.cancelled) {
        this.#advance();
        continue;
      }
      // Read once: what is counted in is what is counted out.
      const bytes = send.bytes;
      if (turn > 0 && turn + bytes > this.#options.bytesPerTurn) {
        this.#schedule();
        return;
      }
      // Waits for a flush to free budget; each flush reschedules.
      if (this.#inTransit > 0 && this.#inTransit + bytes > this.#options.bytesInTransit) return;
      this.#advance();
      turn += bytes;
      this.#inTransit += bytes;
      let released = false;
      send.write(() => {
        if (released) return;
        released = true;
        this.#inTransit -= bytes;
        if (this.queued > 0) this.#schedule();
      });
    }
  }

  #advance(): void {
    this.#queue[this.#head++] = undefined;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1_024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
