// The bytes of HTTP/1.1 messages as this hop writes them: request and status lines, header
// fields, and chunked framing. Every message the core sends is built from these.

export const CRLF = '\r\n';
/** The end of a chunked body (no trailers: they are per hop and dropped). */
export const LAST_CHUNK = '0\r\n\r\n';

/** The request line and header fields, without the blank line that ends the head. */
export function requestHead(method: string, target: string, headers: readonly string[]): string {
  let head = `${method} ${target} HTTP/1.1${CRLF}`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}${CRLF}`;
  return head;
}

/** The size line before a chunk of `length` bytes (followed by the bytes, then CRLF). */
export function chunkPrefix(length: number): string {
  return length.toString(16) + CRLF;
}
