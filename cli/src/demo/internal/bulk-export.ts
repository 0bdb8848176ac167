// The FHIR asynchronous request pattern, as Bulk Data $export: kick-off answers 202 + Content-Location,
// the poll URL answers 202 (X-Progress, Retry-After) then 200 with a manifest, files download as NDJSON.
// fhir-router has no async support (a FhirResponse cannot carry 202 headers), so this lives beside it.

import { randomUUID } from 'node:crypto';
import { isResourceType } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { FHIR_NDJSON, outcome } from './fhir-http.ts';
import type { SampleResponse } from './fhir-http.ts';
import type { PatientCompartment } from './fhir-definitions.ts';
import type { JournaledRepository } from './journaled-repository.ts';
import { patientEverything } from './patient-everything.ts';

export interface BulkExportOptions {
  /** Oldest jobs are forgotten beyond this many, so a long demo does not grow without bound. */
  maxJobs: number;
}

export interface KickoffRequest {
  level: 'system' | 'Patient';
  query: URLSearchParams;
  prefer: string | undefined;
  /** The kick-off URL as the client saw it (public base), echoed in the manifest's `request`. */
  requestUrl: string;
  publicBaseUrl: string;
}

interface ExportJob {
  readonly id: string;
  readonly requestUrl: string;
  readonly transactionTime: string;
  polls: number;
  /** NDJSON per resource type, captured at kick-off so every poll and download agrees. */
  readonly files: ReadonlyMap<string, { ndjson: string; count: number }>;
}

const ndjsonFormats = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);

export class BulkExportJobs {
  private readonly jobs = new Map<string, ExportJob>();
  private readonly repo: JournaledRepository;
  private readonly compartment: PatientCompartment;
  private readonly options: BulkExportOptions;

  constructor(repo: JournaledRepository, compartment: PatientCompartment, options: BulkExportOptions) {
    this.repo = repo;
    this.compartment = compartment;
    this.options = options;
  }

  async kickoff(request: KickoffRequest): Promise<SampleResponse> {
    if (!preferRespondAsync(request.prefer)) {
      return outcome(400, 'error', 'invalid', "$export runs asynchronously: send the header 'Prefer: respond-async' (FHIR Bulk Data kick-off).");
    }
    const format = request.query.get('_outputFormat');
    if (format !== null && !ndjsonFormats.has(format)) {
      return outcome(400, 'error', 'not-supported', `_outputFormat '${format}' is not supported; use application/fhir+ndjson.`);
    }
    const types = request.query.get('_type')?.split(',').map((t) => t.trim()).filter(Boolean);
    const unknownType = types?.find((t) => !isResourceType(t));
    if (unknownType !== undefined) {
      return outcome(400, 'error', 'invalid', `_type names '${unknownType}', which is not a FHIR R4 resource type.`);
    }
    const since = request.query.get('_since');
    if (since !== null && Number.isNaN(Date.parse(since))) {
      return outcome(400, 'error', 'invalid', `_since must be a FHIR instant, e.g. 2024-01-01T00:00:00Z; got '${since}'.`);
    }

    const transactionTime = new Date().toISOString();
    const resources = request.level === 'system' ? await this.allResources() : await this.patientResources();
    const sinceMs = since === null ? undefined : Date.parse(since);
    const lines = new Map<string, string[]>();
    for (const resource of resources) {
      if (types && !types.includes(resource.resourceType)) {
        continue;
      }
      if (sinceMs !== undefined && Date.parse(resource.meta?.lastUpdated ?? '') < sinceMs) {
        continue;
      }
      const file = lines.get(resource.resourceType) ?? [];
      file.push(JSON.stringify(resource));
      lines.set(resource.resourceType, file);
    }
    const files = new Map([...lines].map(([type, file]) => [type, { ndjson: `${file.join('\n')}\n`, count: file.length }]));

    const job: ExportJob = { id: randomUUID(), requestUrl: request.requestUrl, transactionTime, polls: 0, files };
    this.jobs.set(job.id, job);
    for (const oldest of this.jobs.keys()) {
      if (this.jobs.size <= this.options.maxJobs) {
        break;
      }
      this.jobs.delete(oldest);
    }
    return outcome(202, 'information', 'informational', `Export job ${job.id} accepted; poll the Content-Location URL.`, {
      'Content-Location': `${request.publicBaseUrl}/$export-poll-status/${job.id}`,
    });
  }

  poll(jobId: string, publicBaseUrl: string): SampleResponse {
    const job = this.jobs.get(jobId);
    if (!job) {
      return unknownJob(jobId);
    }
    // The data was captured at kick-off; the first poll still answers 202 so clients (and proxies)
    // exercise the in-progress step. Counting polls, not time, keeps this deterministic under load.
    job.polls += 1;
    if (job.polls === 1) {
      return { status: 202, headers: { 'X-Progress': 'exporting: complete on the next poll', 'Retry-After': '1' } };
    }
    const manifest = {
      transactionTime: job.transactionTime,
      request: job.requestUrl,
      requiresAccessToken: false,
      output: [...job.files].map(([type, file]) => ({
        type,
        url: `${publicBaseUrl}/$export-file/${job.id}/${type}.ndjson`,
        count: file.count,
      })),
      error: [],
    };
    return { status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(manifest) };
  }

  cancel(jobId: string): SampleResponse {
    if (!this.jobs.delete(jobId)) {
      return unknownJob(jobId);
    }
    return outcome(202, 'information', 'informational', `Export job ${jobId} cancelled; its files are deleted.`);
  }

  download(jobId: string, fileName: string): SampleResponse {
    const job = this.jobs.get(jobId);
    if (!job) {
      return unknownJob(jobId);
    }
    const file = fileName.endsWith('.ndjson') ? job.files.get(fileName.slice(0, -'.ndjson'.length)) : undefined;
    if (!file) {
      return outcome(404, 'error', 'not-found', `Export job ${jobId} has no file '${fileName}'; the manifest lists its files.`);
    }
    return { status: 200, headers: { 'Content-Type': FHIR_NDJSON }, body: file.ndjson };
  }

  private async allResources(): Promise<WithId<Resource>[]> {
    const all: WithId<Resource>[] = [];
    for (const resourceType of this.repo.liveResourceTypes()) {
      all.push(...(await this.repo.searchResources({ resourceType: resourceType as Resource['resourceType'] })));
    }
    return all;
  }

  // Patient-level export: every patient's compartment, each resource once.
  private async patientResources(): Promise<WithId<Resource>[]> {
    const found = new Map<string, WithId<Resource>>();
    for (const patient of await this.repo.searchResources({ resourceType: 'Patient' })) {
      const everything = await patientEverything(this.repo, this.compartment, patient.id);
      for (const entry of everything.entry ?? []) {
        const resource = entry.resource as WithId<Resource>;
        found.set(`${resource.resourceType}/${resource.id}`, resource);
      }
    }
    return [...found.values()].sort((a, b) => a.resourceType.localeCompare(b.resourceType));
  }
}

function preferRespondAsync(prefer: string | undefined): boolean {
  return (prefer ?? '')
    .split(/[,;]/)
    .some((token) => token.trim().toLowerCase() === 'respond-async');
}

function unknownJob(jobId: string): SampleResponse {
  return outcome(404, 'error', 'not-found', `No export job '${jobId}' (finished jobs are kept until cancelled or displaced); start a new $export.`);
}
