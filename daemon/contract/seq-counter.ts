/**
 * The decision sequence number, persisted in `<state_dir>/seq` so it survives restarts: a
 * gate that remembers the last seq it saw can then reject replays.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import type { SeqSource } from './payloads.js';

export class SeqCounter implements SeqSource {
  readonly file: string;
  private last: number;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'seq');
    this.last = SeqCounter.read(this.file);
  }

  /** The last seq handed out (0 before the first decision ever). */
  get current(): number {
    return this.last;
  }

  /** Persists before returning, so a crash after publishing can never reuse the number. */
  next(): number {
    const seq = this.last + 1;
    try {
      writeFileAtomic(this.file, `${seq}\n`);
    } catch (cause) {
      throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot persist the decision seq to ${this.file}`, {
        cause,
      });
    }
    this.last = seq;
    return seq;
  }

  private static read(file: string): number {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new KioskError(ErrorCodes.STATE_CORRUPT, `cannot read the decision seq from ${file}`, {
        cause: e,
      });
    }
    const value = Number(text.trim());
    // Restarting from 0 would make gates reject every new decision as a replay: refuse instead.
    if (!Number.isSafeInteger(value) || value < 0 || text.trim() === '') {
      throw new KioskError(
        ErrorCodes.STATE_CORRUPT,
        `${file} does not hold a sequence number; fix or delete it (gates may then see seq restart)`,
        { details: { file, content: text.slice(0, 40) } },
      );
    }
    return value;
  }
}
