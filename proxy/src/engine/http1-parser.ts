// The one module that knows Node's bundled llhttp binding (the parser node:http itself runs, in
// strict mode): its callback shapes, batching of long header blocks, and error objects.

interface NativeParserError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
}

interface NativeParser {
  initialize(kind: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | NativeParserError;
  finish(): undefined | NativeParserError;
  close(): void;
  consume(handle: object): void;
  unconsume(): void;
  getCurrentBuffer(): Buffer;
  free(): void;
  [key: number]: unknown;
}

interface NativeParserClass {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

// `_http_common` is the module node:http is built on; its HTTPParser has been stable since Node 12.
const common = process.getBuiltinModule('_http_common') as { HTTPParser: NativeParserClass; methods: string[] };
const { HTTPParser, methods: METHODS } = common;
const K_ON_MESSAGE_BEGIN = HTTPParser.kOnMessageBegin;
const K_ON_HEADERS = HTTPParser.kOnHeaders;
const K_ON_HEADERS_COMPLETE = HTTPParser.kOnHeadersComplete;
const K_ON_BODY = HTTPParser.kOnBody;
const K_ON_MESSAGE_COMPLETE = HTTPParser.kOnMessageComplete;

export interface MessageHead {
  versionMajor: number;
  versionMinor: number;
  /** [name, value, name, value, ...] as received. */
  rawHeaders: string[];
  /** Requests only. */
  method: string;
  url: string;
  /** Responses only. */
  statusCode: number;
  statusMessage: string;
  upgrade: boolean;
  shouldKeepAlive: boolean;
}

/** What a parser reports to; `onHead` returns true to skip the body (a response to HEAD). */
export interface MessageSink {
  /** The first byte of a message: a response nobody asked for shows itself here. */
  onBegin(): void;
  onHead(head: MessageHead): boolean;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

export interface ParseFailure {
  /** llhttp's code, e.g. HPE_INVALID_HEADER_TOKEN. */
  code: string;
  /** Bytes of the chunk consumed before the failure. */
  bytesParsed: number;
}

export class Http1Parser {
  readonly #native: NativeParser;
  #sink: MessageSink;
  /** Headers and URL delivered ahead of the head, when they span several reads or pass 32 fields. */
  #pendingHeaders: string[] | undefined;
  #pendingUrl = '';
  #inBody = false;

  constructor(kind: 'request' | 'response', maxHeaderBytes: number, sink: MessageSink) {
    this.#sink = sink;
    const native = new HTTPParser();
    native.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, maxHeaderBytes, HTTPParser.kLenientNone);
    native[K_ON_MESSAGE_BEGIN] = () => this.#sink.onBegin();
    native[K_ON_HEADERS] = (headers: string[], url: string) => {
      // Trailers also arrive here, after the body: they are per hop and dropped.
      if (this.#inBody) return;
      this.#pendingHeaders = this.#pendingHeaders === undefined ? headers : this.#pendingHeaders.concat(headers);
      this.#pendingUrl += url;
    };
    native[K_ON_HEADERS_COMPLETE] = (
      versionMajor: number,
      versionMinor: number,
      headers: string[] | undefined,
      method: number | undefined,
      url: string | undefined,
      statusCode: number | undefined,
      statusMessage: string | undefined,
      upgrade: boolean,
      shouldKeepAlive: boolean,
    ): number => {
      let rawHeaders = headers ?? [];
      if (this.#pendingHeaders !== undefined) {
        rawHeaders = headers === undefined ? this.#pendingHeaders : this.#pendingHeaders.concat(headers);
        this.#pendingHeaders = undefined;
      }
      const fullUrl = this.#pendingUrl + (url ?? '');
      this.#pendingUrl = '';
      this.#inBody = true;
      const skipBody = this.#sink.onHead({
        versionMajor,
        versionMinor,
        rawHeaders,
        method: method === undefined ? '' : (METHODS[method] ?? ''),
        url: fullUrl,
        statusCode: statusCode ?? 0,
        statusMessage: statusMessage ?? '',
        upgrade,
        shouldKeepAlive,
      });
      return skipBody ? 1 : 0;
    };
    native[K_ON_BODY] = (chunk: Buffer) => this.#sink.onBody(chunk);
    native[K_ON_MESSAGE_COMPLETE] = () => {
      this.#inBody = false;
      this.#sink.onComplete();
    };
    this.#native = native;
  }

  /** Later messages on the same connection report to another sink (a response parser per exchange). */
  set sink(sink: MessageSink) {
    this.#sink = sink;
  }

  /**
   * Parses `chunk`; returns the bytes consumed, which is less than its length only when a message
   * asked to switch protocols (Upgrade, CONNECT): the caller decides whether to go on after it.
   */
  execute(chunk: Buffer): number | ParseFailure {
    const result = this.#native.execute(chunk);
    if (typeof result === 'number') return result;
    return { code: result.code, bytesParsed: result.bytesParsed ?? 0 };
  }

  /** The peer's end of stream: an error when it falls inside a message. */
  finish(): ParseFailure | undefined {
    const result = this.#native.finish();
    return result === undefined ? undefined : { code: result.code, bytesParsed: result.bytesParsed ?? 0 };
  }

  /**
   * Reads the socket's handle natively (as node:http's server does): no JS 'data' events, no Buffer
   * per read; `onExecute` hears each read's result. False when the socket has no such handle (TLS).
   */
  consume(socket: { _handle?: { isStreamBase?: boolean } | null }, onExecute: (result: number | ParseFailure) => void): boolean {
    const handle = socket._handle;
    if (handle?.isStreamBase !== true) return false;
    this.#native[HTTPParser.kOnExecute] = (result: number | NativeParserError) => {
      onExecute(typeof result === 'number' ? result : { code: result.code, bytesParsed: result.bytesParsed ?? 0 });
    };
    this.#native.consume(handle);
    return true;
  }

  /** Back to reads through JS (`execute`), after an early stop the native reader cannot resume. */
  unconsume(): void {
    this.#native.unconsume();
  }

  /** The bytes of the read being parsed (a copy): for what must look at them after an early stop. */
  currentBuffer(): Buffer {
    return this.#native.getCurrentBuffer();
  }

  /** Frees the native parser; never from inside one of its own callbacks (deferred). */
  close(): void {
    setImmediate(() => this.#native.close());
  }
}
