/**
 * glibc malloc settings every launcher of the daemon sets (Makefile `run`, the systemd unit, the
 * pm2 ecosystem file), and the benchmarks use, because glibc reads them only at process start:
 * - MALLOC_MMAP_THRESHOLD_: a fixed threshold keeps every frame buffer (640x480 BGR is 900 KiB) in its
 *   own mapping, returned to the system when the frame is freed. By default glibc raises the
 *   threshold after the first large free, and frames then come from heap arenas that fragment;
 * - MALLOC_ARENA_MAX: libuv's pool threads (decode, resize) and ONNX Runtime's threads would each get
 *   an arena of their own.
 * bench/performance.md ("Replay soak", change 7) has the measurement. test/unit/malloc-env.test.ts
 * checks that every launcher sets these exact values.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '262144',
};
