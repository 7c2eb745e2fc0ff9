/**
 * A one-slot mailbox between a capture loop and the pipeline: the newest frame wins. A frame
 * the consumer has not taken yet is overwritten by the next one (counted as dropped), so a slow
 * pipeline never makes frames queue up; memory stays at one pending frame whatever the rates.
 */
export class LatestFrameSlot<T> {
  private pending: T | undefined;
  private hasPending = false;
  private waiter: { resolve: (item: T | undefined) => void; reject: (e: Error) => void } | null = null;
  private closed = false;
  private failure: Error | null = null;
  offered = 0;
  taken = 0;
  dropped = 0;

  /** `onDrop` receives every overwritten or discarded item, e.g. to free native memory now. */
  constructor(private readonly onDrop: (item: T) => void = () => {}) {}

  /** Producer side: hand over an item, replacing (and dropping) one the consumer has not taken. */
  offer(item: T): void {
    if (this.closed) {
      this.onDrop(item);
      return;
    }
    this.offered++;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = null;
      this.taken++;
      resolve(item);
      return;
    }
    if (this.hasPending) {
      this.dropped++;
      this.onDrop(this.pending as T);
    }
    this.pending = item;
    this.hasPending = true;
  }

  /**
   * Consumer side: the newest item, waiting for one if needed. After close(), a pending item
   * is still handed out once; then `undefined` (normal end) or the error given to close().
   */
  take(): Promise<T | undefined> {
    if (this.waiter)
      return Promise.reject(new Error('LatestFrameSlot has one consumer; take() is already waiting'));
    if (this.hasPending) {
      const item = this.pending as T;
      this.pending = undefined;
      this.hasPending = false;
      this.taken++;
      return Promise.resolve(item);
    }
    if (this.closed) return this.failure ? Promise.reject(this.failure) : Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** No more items: wake a waiting consumer with the end (or with `error`). Idempotent. */
  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = error ?? null;
    const waiter = this.waiter;
    this.waiter = null;
    if (!waiter) return;
    if (error) waiter.reject(error);
    else waiter.resolve(undefined);
  }

  /** Throw away a pending item (consumer shut down); it goes to `onDrop` but is not counted. */
  discard(): void {
    if (!this.hasPending) return;
    const item = this.pending as T;
    this.pending = undefined;
    this.hasPending = false;
    this.onDrop(item);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
