// A set of strings kept in sort order (as Array.prototype.sort() has it: UTF-16 code units), so a
// source lists its routes in a stable order without sorting every key on every change.

export class SortedKeys {
  readonly #keys: string[];

  /** From keys in any order (sorted once). */
  constructor(keys: Iterable<string> = []) {
    this.#keys = [...new Set(keys)].sort();
  }

  /** O(log n) search, O(n) move at worst; at the end (keys arriving in order) O(1). */
  add(key: string): void {
    const at = this.#lowerBound(key);
    if (this.#keys[at] !== key) this.#keys.splice(at, 0, key);
  }

  delete(key: string): void {
    const at = this.#lowerBound(key);
    if (this.#keys[at] === key) this.#keys.splice(at, 1);
  }

  get first(): string | undefined {
    return this.#keys[0];
  }

  get size(): number {
    return this.#keys.length;
  }

  /** Those after the first, in order. */
  rest(): string[] {
    return this.#keys.slice(1);
  }

  [Symbol.iterator](): IterableIterator<string> {
    return this.#keys[Symbol.iterator]();
  }

  #lowerBound(key: string): number {
    let low = 0;
    let high = this.#keys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#keys[mid] as string) < key) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
