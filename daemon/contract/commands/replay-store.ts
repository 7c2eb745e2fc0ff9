/**
 * Replay protection for signed commands that survives restarts: the digest of every executed
 * signature is kept, with the instant its `ts` leaves the clock-skew window, in
 * `<state_dir>/command-replay.json` (written atomically before the command runs). Past that
 * instant the request is refused for its age anyway, so the entry is dropped.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../../core/errors.js';
import type { ReplayGuard } from './request.js';

/** Signed commands remembered at most; only fleet-key holders can add entries. */
const MAX_ENTRIES = 10_000;

export class PersistentReplayGuard implements ReplayGuard {
  private readonly entries = new Map<string, number>();
  readonly file: string;

  constructor(
    stateDir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = path.join(stateDir, 'command-replay.json');
    let text: string | null = null;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      // first start: nothing executed yet
    }
    if (text !== null) {
      try {
        const stored = JSON.parse(text) as Record<string, unknown>;
        for (const [digest, until] of Object.entries(stored)) {
          if (typeof until === 'number') this.entries.set(digest, until);
        }
      } catch (cause) {
        throw new KioskError(ErrorCodes.STATE_CORRUPT, `${this.file} is not valid JSON`, { cause });
      }
    }
  }

  has(digest: string): boolean {
    return this.entries.has(digest);
  }

  add(digest: string, forgetAfterMs: number): void {
    const now = this.now();
    for (const [d, until] of this.entries) if (until < now) this.entries.delete(d);
    if (this.entries.size >= MAX_ENTRIES) {
      throw new KioskError(
        ErrorCodes.COMMAND_BUSY,
        'too many signed commands within the clock-skew window; try again later',
      );
    }
    this.entries.set(digest, forgetAfterMs);
    try {
      writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.entries)), 0o600);
    } catch (cause) {
      this.entries.delete(digest);
      throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot write ${this.file}`, { cause });
    }
  }
}
