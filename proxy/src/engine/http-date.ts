// The IMF-fixdate for Date headers, formatted once per second rather than once per response.

let cachedSecond = -1;
let cached = '';

export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cached = new Date(second * 1000).toUTCString();
  }
  return cached;
}
