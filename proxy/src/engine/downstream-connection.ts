// One originator connection: requests parsed in order, answered strictly one at a time in that
// order (a pipelined request waits, with its body held back by not reading the socket), response
// heads and bodies framed by this hop, and every parse failure answered after what came before it.

import type { Socket } from 'node:net';
import { ProxyError } from '../errors.ts';
import { Http1Parser, type MessageHead, type ParseFailure } from './http1-parser.ts';
import { chunkPrefix, CRLF, LAST_CHUNK } from './wire-format.ts';

export interface BodySink {
  onData(chunk: Buffer): void;
  onEnd(): void;
  /** The body turned out malformed (a parse failure inside it, or the originator's FIN mid-body). */
  onFailure(error: ProxyError): void;
}

/** How the response body is framed on this hop. */
export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ConnectionHooks {
  /** A request head has been parsed and it is this request's turn. */
  onRequest(request: DownstreamRequest): void;
  /** The parser refused what followed every earlier request: this answer is written, then close. */
  renderParseFailure(code: string, chunk: Buffer | undefined): RawAnswer | undefined;
  /** The answer to a bare HTTP/0.9 request line, which Node's parser would wait on for headers. */
  http09Answer(): RawAnswer;
  maxHeaderBytes: number;
}

/** A whole response written with no request behind it (parse failures, timeouts). */
export interface RawAnswer {
  head: string;
  body: Buffer;
}


/** A request line without a version (HTTP/0.9). */
const HTTP09_LINE = /^[A-Z]+ [^ \r\n]+\r?\n/;


export class DownstreamRequest {
  readonly head: MessageHead;
  readonly connection: DownstreamConnection;
  /** Every body byte has arrived (or there was none). */
  bodyComplete = false;
  bodyFailure: ProxyError | undefined;
  #pending: Buffer[] | undefined;
  #sink: BodySink | undefined;
  headSent = false;
  finished = false;
  /** Close the connection after this response (asked for, or the body was not read). */
  closeAfter: boolean;
  #framing: ResponseFraming = 'none';
  /** Response bytes not yet handed to the socket (until the tick that wrote the head ends). */
  #held: (string | Buffer)[] | undefined;
  #goneListener: (() => void) | undefined;
  #drainListener: (() => void) | undefined;

  constructor(head: MessageHead, connection: DownstreamConnection) {
    this.head = head;
    this.connection = connection;
    this.closeAfter = !head.shouldKeepAlive;
  }

  get httpVersion(): string {
    return `${this.head.versionMajor}.${this.head.versionMinor}`;
  }

  /** Receives the body: chunks that arrived before this are delivered first. */
  setBodySink(sink: BodySink | undefined): void {
    this.#sink = sink;
    if (sink === undefined) return;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) for (const chunk of pending) sink.onData(chunk);
    if (this.bodyFailure !== undefined) sink.onFailure(this.bodyFailure);
    else if (this.bodyComplete) sink.onEnd();
    else this.connection.resumeReading();
  }

  /** @internal from the connection's parser */
  deliverBody(chunk: Buffer): void {
    if (this.#sink !== undefined) {
      this.#sink.onData(chunk);
      return;
    }
    // Nobody reads it yet (a pipelined request waiting, or the upstream not connected): hold what
    // this read brought, and read no more until it is wanted.
    (this.#pending ??= []).push(chunk);
    this.connection.pauseReading();
  }

  /** @internal */
  deliverEnd(): void {
    this.bodyComplete = true;
    this.#sink?.onEnd();
  }

  /** @internal */
  deliverFailure(error: ProxyError): void {
    if (this.bodyComplete || this.bodyFailure !== undefined) return;
    this.bodyFailure = error;
    this.closeAfter = true;
    this.#sink?.onFailure(error);
  }

  pauseBody(): void {
    this.connection.pauseReading();
  }

  resumeBody(): void {
    this.connection.resumeReading();
  }

  /** Writes the status line and `headerBlock` (`Name: value\r\n` lines) plus this hop's framing. */
  writeHead(statusCode: number, statusMessage: string, headerBlock: string, framing: ResponseFraming, contentLength = 0): void {
    if (this.headSent) throw new Error('response head written twice');
    this.headSent = true;
    const http10 = this.head.versionMinor === 0;
    if (framing === 'chunked' && http10) framing = 'close';
    if (framing === 'close') this.closeAfter = true;
    if (this.connection.draining) this.closeAfter = true;
    this.#framing = framing;
    let head = `HTTP/1.1 ${statusCode} ${statusMessage}${CRLF}${headerBlock}`;
    if (framing === 'length') head += `Content-Length: ${contentLength}${CRLF}`;
    else if (framing === 'chunked') head += `Transfer-Encoding: chunked${CRLF}`;
    if (this.closeAfter) head += `Connection: close${CRLF}`;
    else if (http10) head += `Connection: keep-alive${CRLF}`;
    head += CRLF;
    // Held until the read that brought it has been parsed (the exchange calls flush) or the
    // response ends: head and the body that came with it leave in one write, and a failure found
    // in that same read can still be answered with a status instead of a cut.
    this.#held = [head];
  }

  /** Returns false when the originator's socket is full: wait for `onDrain`. */
  writeBody(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    if (this.#framing !== 'chunked') return this.#out(chunk);
    if (this.#held !== undefined) {
      this.#held.push(chunkPrefix(chunk.length), chunk, CRLF);
      return true;
    }
    const socket = this.connection.socket;
    socket.cork();
    socket.write(chunkPrefix(chunk.length), 'latin1');
    socket.write(chunk);
    const ok = socket.write(CRLF, 'latin1');
    process.nextTick(uncork, socket);
    return ok;
  }

  /**
   * Takes back a head that has not left yet (same tick): the caller answers with a status of its
   * own instead. False once bytes are on their way, when only cutting the connection is honest.
   */
  retract(): boolean {
    if (this.#held === undefined) return false;
    this.#held = undefined;
    this.headSent = false;
    this.#framing = 'none';
    return true;
  }

  /** Hands what is held to the socket (after each upstream read, and at the end). */
  flush(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    const socket = this.connection.socket;
    if (socket.destroyed) return;
    socket.cork();
    for (const piece of held) this.connection.write(piece);
    socket.uncork();
  }

  #out(data: string | Buffer): boolean {
    if (this.#held !== undefined) {
      this.#held.push(data);
      return true;
    }
    return this.connection.write(data);
  }

  /** The response is whole: the next request on this connection may go. */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.#framing === 'chunked') this.#out(LAST_CHUNK);
    this.flush();
    this.#goneListener = undefined;
    this.#drainListener = undefined;
    this.connection.responseEnded(this);
  }

  /** A failure after the head was sent: the only honest signal left is to cut the connection. */
  abort(): void {
    this.finished = true;
    this.#held = undefined;
    this.#goneListener = undefined;
    this.connection.destroy();
  }

  /** The originator went away before this response ended. */
  onGone(listener: (() => void) | undefined): void {
    this.#goneListener = listener;
  }

  onDrain(listener: (() => void) | undefined): void {
    this.#drainListener = listener;
  }

  /** @internal */
  notifyGone(): void {
    const listener = this.#goneListener;
    this.#goneListener = undefined;
    listener?.();
  }

  /** @internal */
  notifyDrain(): void {
    this.#drainListener?.();
  }
}

interface StreamHandle {
  readStart(): number;
  readStop(): number;
}

function handleOf(socket: Socket): StreamHandle | undefined {
  return (socket as Socket & { _handle?: StreamHandle | null })._handle ?? undefined;
}

function uncork(socket: Socket): void {
  socket.uncork();
}

export class DownstreamConnection {
  readonly socket: Socket;
  readonly #hooks: ConnectionHooks;
  readonly #parser: Http1Parser;
  /** Requests in arrival order; the first is the one being answered. */
  readonly #queue: DownstreamRequest[] = [];
  /** The request whose body the parser is reading. */
  #receiving: DownstreamRequest | undefined;
  #paused = false;
  #failed = false;
  #closed = false;
  /** When the current request head began (for the headers timeout), 0 when none is being read. */
  headStartedAt = 0;
  /** When the connection last fell idle (keep-alive timeout), 0 while busy. */
  idleSince: number;
  draining = false;
  #stopReading = false;
  #deferredAnswer: RawAnswer | undefined;

  constructor(socket: Socket, hooks: ConnectionHooks, now: number) {
    this.socket = socket;
    this.#hooks = hooks;
    this.idleSince = now;
    socket.setNoDelay(true);
    this.#parser = new Http1Parser('request', hooks.maxHeaderBytes, {
      onBegin: () => {
        this.headStartedAt = performance.now();
        this.idleSince = 0;
      },
      onHead: (head) => {
        this.headStartedAt = 0;
        this.#sawHead = true;
        const request = new DownstreamRequest(head, this);
        this.#receiving = request;
        this.#queue.push(request);
        // CONNECT turns the rest of the connection into a tunnel, which is never opened here. (An
        // Upgrade is forwarded as a plain request, its Upgrade header being hop-by-hop.)
        if (head.upgrade && head.method === 'CONNECT') {
          request.closeAfter = true;
          this.#stopReading = true;
        }
        if (this.#queue.length === 1) this.#hooks.onRequest(request);
        else this.pauseReading();
        return false;
      },
      onBody: (chunk) => this.#receiving?.deliverBody(chunk),
      onComplete: () => {
        const request = this.#receiving;
        this.#receiving = undefined;
        request?.deliverEnd();
      },
    });
    // Read natively where the socket allows it (plain TCP): no 'data' event or Buffer per read.
    if (!this.#parser.consume(socket as Socket & { _handle?: { isStreamBase?: boolean } | null }, (result) => this.#onExecuted(result))) this.#listen();
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#queue[0]?.notifyDrain());
  }

  get busy(): boolean {
    return this.#queue.length > 0;
  }

  #listening = false;
  #sawHead = false;

  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** A read the native parser consumed. */
  #onExecuted(result: number | ParseFailure): void {
    if (typeof result !== 'number') {
      this.#parseFailed(result.code, this.#parser.currentBuffer());
      return;
    }
    if (!this.#sawHead && this.headStartedAt > 0) {
      // The connection's head is still incomplete after its first read: a bare HTTP/0.9 request
      // line would wait here for headers that never come.
      this.#sawHead = true;
      if (HTTP09_LINE.test(this.#parser.currentBuffer().toString('latin1', 0, 256))) {
        this.refuse(this.#hooks.http09Answer());
        return;
      }
    }
    const read = result < 0 ? 0 : result;
    if (this.#stopReading) {
      this.pauseReading();
      return;
    }
    // The parser stops after a message that asked to switch protocols: the rest of this read is
    // parsed from JS (an Upgrade answered as a plain request is followed by the next request).
    const buffer = this.#parser.currentBuffer();
    if (read < buffer.length) {
      this.#parser.unconsume();
      this.#listen();
      this.#onData(buffer.subarray(read));
    }
  }

  #onData(chunk: Buffer): void {
    let rest = chunk;
    for (;;) {
      if (this.#failed || this.#stopReading) {
        this.pauseReading();
        return;
      }
      const result = this.#parser.execute(rest);
      if (typeof result !== 'number') {
        this.#parseFailed(result.code, chunk);
        return;
      }
      if (!this.#sawHead && this.headStartedAt > 0) {
        this.#sawHead = true;
        if (HTTP09_LINE.test(rest.toString('latin1', 0, 256))) {
          this.refuse(this.#hooks.http09Answer());
          return;
        }
      }
      // The parser stops after a message that asked to switch protocols; what follows an Upgrade
      // that was answered as a plain request is the next request.
      if (result >= rest.length) return;
      rest = rest.subarray(result);
    }
  }

  /** The originator's FIN: a message cut short is answered 400; otherwise it has gone. */
  #onEnd(): void {
    if (this.#failed) return;
    const failure = this.#parser.finish();
    if (failure !== undefined) {
      this.#parseFailed(failure.code, undefined);
      return;
    }
    // Between messages: nothing in flight is wanted any more.
    for (const request of this.#queue) request.notifyGone();
    this.destroy();
  }

  #parseFailed(code: string, chunk: Buffer | undefined): void {
    this.#failed = true;
    this.pauseReading();
    const receiving = this.#receiving;
    if (receiving !== undefined && !receiving.bodyComplete) {
      // Inside the body of a request being forwarded: that request fails with it and answers for it.
      receiving.deliverFailure(
        new ProxyError('FHIRMESH_REQUEST_MALFORMED', `the request body is not valid HTTP/1.1 framing (${code}); nothing was delivered`),
      );
      if (this.#queue[0] !== receiving) {
        // It had not started (pipelined behind another): nobody will answer it.
        this.#queue.splice(this.#queue.indexOf(receiving), 1);
        this.#deferredAnswer = this.#hooks.renderParseFailure('HPE_INVALID_EOF_STATE', undefined);
        if (this.#queue.length === 0) this.#writeDeferred();
      }
      return;
    }
    // The whole read, as Node's clientError rawPacket: parse-errors.ts tells a long URL by it.
    this.#deferredAnswer = this.#hooks.renderParseFailure(code, chunk);
    if (this.#queue.length === 0) this.#writeDeferred();
  }

  /** Answers without a request (timeouts, HTTP/0.9): at once when idle, after what is in flight otherwise. */
  refuse(answer: RawAnswer): void {
    if (this.#failed) return;
    this.#failed = true;
    this.pauseReading();
    this.#deferredAnswer = answer;
    if (this.#queue.length === 0) this.#writeDeferred();
  }

  #writeDeferred(): void {
    const answer = this.#deferredAnswer;
    this.#deferredAnswer = undefined;
    if (answer === undefined || this.socket.destroyed || !this.socket.writable) {
      this.destroy();
      return;
    }
    this.socket.cork();
    this.socket.write(answer.head, 'latin1');
    this.socket.end(answer.body);
    this.socket.uncork();
    this.#closed = true;
    // A client that never reads must not keep the socket open.
    this.socket.setTimeout(5_000, () => this.socket.destroy());
  }

  /** @internal */
  responseEnded(request: DownstreamRequest): void {
    if (this.#queue[0] !== request) return;
    this.#queue.shift();
    if (request.closeAfter || this.#closed) {
      this.#queue.length = 0;
      this.#closed = true;
      this.socket.end();
      this.socket.setTimeout(5_000, () => this.socket.destroy());
      return;
    }
    if (this.#failed && this.#queue.length === 0) {
      this.#writeDeferred();
      return;
    }
    const next = this.#queue[0];
    if (next !== undefined) {
      this.#hooks.onRequest(next);
      return;
    }
    this.idleSince = performance.now();
    this.resumeReading();
  }

  write(data: string | Buffer): boolean {
    if (this.socket.destroyed) return false;
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  pauseReading(): void {
    if (this.#paused) return;
    this.#paused = true;
    // A natively consumed socket is not a flowing stream: its handle is stopped directly, as
    // node:http's server does (socket.pause() alone would keep the reads coming).
    if (this.#listening) this.socket.pause();
    else handleOf(this.socket)?.readStop();
  }

  resumeReading(): void {
    if (!this.#paused || this.#failed || this.#stopReading) return;
    // A pipelined request waiting its turn keeps the socket paused: its body waits in the kernel.
    const waiting = this.#receiving;
    if (waiting !== undefined && waiting !== this.#queue[0]) return;
    this.#paused = false;
    if (this.#listening) this.socket.resume();
    else handleOf(this.socket)?.readStart();
  }

  /** The listener is shutting down: idle now → close; busy → close after the current response. */
  drain(): void {
    this.draining = true;
    if (this.#queue.length === 0) this.destroy();
  }

  destroy(): void {
    if (!this.socket.destroyed) this.socket.destroy();
  }

  #onClose(): void {
    this.#closed = true;
    const queue = this.#queue.splice(0);
    for (const request of queue) if (!request.finished) request.notifyGone();
    this.#parser.close();
  }
}
