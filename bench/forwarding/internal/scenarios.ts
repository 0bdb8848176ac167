// The loads every target gets, in this order: a read-heavy search and a write-heavy
// transaction as fast as the target goes (32 in flight), the search at a fixed moderate
// rate (what a sidecar mostly sees), and the search one request at a time.
import { PATIENT_SEARCH_PATH, TRANSACTION_PATH } from './fixtures.ts';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly requestBodyBytes: number;
  readonly expectedStatus: number;
  readonly concurrency: number;
  /** 0: closed loop (as fast as the target goes). Otherwise a fixed arrival rate. */
  readonly requestsPerSecond: number;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'search-c32',
    description: 'GET Patient search, ~2 KB searchset Bundle back, 32 requests in flight',
    method: 'GET',
    path: PATIENT_SEARCH_PATH,
    requestBodyBytes: 0,
    expectedStatus: 200,
    concurrency: 32,
    requestsPerSecond: 0,
  },
  {
    name: 'transaction-c32',
    description: 'POST ~64 KB transaction Bundle, ~150 B response, 32 requests in flight',
    method: 'POST',
    path: TRANSACTION_PATH,
    requestBodyBytes: 64 * 1024,
    expectedStatus: 200,
    concurrency: 32,
    requestsPerSecond: 0,
  },
  {
    name: 'search-r2000',
    description: 'GET Patient search, ~2 KB back, fixed 2,000 req/s (up to 32 in flight)',
    method: 'GET',
    path: PATIENT_SEARCH_PATH,
    requestBodyBytes: 0,
    expectedStatus: 200,
    concurrency: 32,
    requestsPerSecond: 2000,
  },
  {
    name: 'search-c1',
    description: 'GET Patient search, ~2 KB back, one request at a time (latency floor)',
    method: 'GET',
    path: PATIENT_SEARCH_PATH,
    requestBodyBytes: 0,
    expectedStatus: 200,
    concurrency: 1,
    requestsPerSecond: 0,
  },
];
