// Temp dirs of control planes (etcd data, certificates, logs): on tmpfs when there is one, removed when
// the runner exits however it exits, and reaped, with their orphaned processes, after a SIGKILLed run.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'fhirmesh-control-plane-';
const OWNER_FILE = 'owner.json';

interface Owner {
  pid: number;
  keep: boolean;
}

/** Dirs to remove at exit; the exit hook is synchronous, so it also runs on process.exit() and Ctrl-C. */
const removeAtExit = new Set<string>();
let exitHookInstalled = false;

/** tmpfs where there is one: etcd's fsyncs and 64 MB WAL preallocation then cost no disk I/O. */
function tmpRoot(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // no tmpfs: fall through
  }
  return os.tmpdir();
}

/** A new control-plane dir owned by this process; `keep` leaves it in place after release and exit. */
export function createRunDir(keep: boolean): string {
  const root = tmpRoot();
  reapAbandoned(root);
  const dir = fs.mkdtempSync(path.join(root, PREFIX));
  const owner: Owner = { pid: process.pid, keep };
  fs.writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify(owner));
  if (!keep) {
    removeAtExit.add(dir);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const leftover of removeAtExit) fs.rmSync(leftover, { recursive: true, force: true });
      });
    }
  }
  return dir;
}

/** Removes the dir now, unless it was created with keep. */
export function releaseRunDir(dir: string): void {
  if (!removeAtExit.delete(dir)) return;
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Keeps the dir past this process's exit, e.g. for the logs of a failed start; the next run reaps it. */
export function retainUntilNextRun(dir: string): void {
  removeAtExit.delete(dir);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A runner killed with SIGKILL runs no exit hook: its etcd and kube-apiserver keep running and its dir
 * keeps holding RAM. Each such process has the dir in its arguments (--data-dir, --cert-dir), which is
 * how they are found in /proc; nothing else is touched. Dirs created with keep lose only etcd's data.
 */
function reapAbandoned(root: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(root).filter((name) => name.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(root, name);
    let owner: Owner;
    try {
      owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as Owner;
    } catch {
      continue; // not ours, or still being set up
    }
    if (isAlive(owner.pid)) continue;
    for (const pid of processesMentioning(`${dir}/`)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (owner.keep) fs.rmSync(path.join(dir, 'etcd-data'), { recursive: true, force: true });
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Pids whose command line contains `text` (Linux /proc; elsewhere none). */
function processesMentioning(text: string): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or not readable
    }
  }
  return pids;
}
