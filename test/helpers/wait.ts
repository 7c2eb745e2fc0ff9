/** Waiting in tests: by condition, never by a fixed time that stands in for one. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every 20 ms; throws `timed out waiting for <what>` after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Like until(), but answers false on timeout instead of throwing. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  try {
    await until(cond, timeoutMs, 'a condition');
    return true;
  } catch {
    return false;
  }
}
