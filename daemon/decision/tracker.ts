/**
 * Face tracking by greedy IoU matching. A kiosk sees one to a few slow-moving faces, so a
 * Kalman/Hungarian tracker buys nothing here; what matters is that ids are stable while a
 * person stays and never reused, so a session (and its cooldown) stays with one person.
 */
import type { Box, DecisionConfig } from './types.js';

/** Intersection over union of two [x, y, w, h] boxes; 0 when either box is empty. */
export function iou(a: Box, b: Box): number {
  const [ax, ay, aw, ah] = a;
  const [bx, by, bw, bh] = b;
  if (!(aw > 0 && ah > 0 && bw > 0 && bh > 0)) return 0;
  const iw = Math.min(ax + aw, bx + bw) - Math.max(ax, bx);
  const ih = Math.min(ay + ah, by + bh) - Math.max(ay, by);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / (aw * ah + bw * bh - inter);
}

export interface TrackAssignment {
  trackId: number;
  detectionIndex: number;
}

export interface TrackUpdate {
  /** One entry per detection, in detection order. */
  assignments: TrackAssignment[];
  /** Tracks that expired in this step, ascending. */
  lost: number[];
}

interface Track {
  id: number;
  box: Box;
  lastSeenMs: number;
}

export class IouTracker {
  private readonly tracks = new Map<number, Track>();
  private nextId = 1;

  constructor(private readonly cfg: Pick<DecisionConfig, 'track_iou' | 'track_lost_ms'>) {}

  /**
   * Match `boxes` (one frame's detections) to live tracks. Tracks unseen for more than
   * track_lost_ms expire *before* matching, so a new person stepping into the spot of one
   * who left long ago gets a new id. A detection continues a track when their IoU is above
   * track_iou; pairs are taken greedily by IoU (ties: lower track id, then lower detection
   * index) so the result does not depend on Map order. Unmatched detections open new tracks.
   */
  update(boxes: readonly Box[], nowMs: number): TrackUpdate {
    const lost: number[] = [];
    for (const t of this.tracks.values()) {
      if (nowMs - t.lastSeenMs > this.cfg.track_lost_ms) lost.push(t.id);
    }
    lost.sort((a, b) => a - b);
    for (const id of lost) this.tracks.delete(id);

    const pairs: { trackId: number; det: number; iou: number }[] = [];
    for (const t of this.tracks.values()) {
      boxes.forEach((b, det) => {
        const v = iou(t.box, b);
        if (v > this.cfg.track_iou) pairs.push({ trackId: t.id, det, iou: v });
      });
    }
    pairs.sort((p, q) => q.iou - p.iou || p.trackId - q.trackId || p.det - q.det);

    const trackOf = new Map<number, number>();
    const usedTracks = new Set<number>();
    for (const p of pairs) {
      if (trackOf.has(p.det) || usedTracks.has(p.trackId)) continue;
      trackOf.set(p.det, p.trackId);
      usedTracks.add(p.trackId);
    }

    const assignments = boxes.map((box, detectionIndex) => {
      let trackId = trackOf.get(detectionIndex);
      if (trackId === undefined) trackId = this.nextId++;
      this.tracks.set(trackId, { id: trackId, box: [...box], lastSeenMs: nowMs });
      return { trackId, detectionIndex };
    });
    return { assignments, lost };
  }

  /** Ids of the live tracks, ascending (for logs and tests). */
  trackIds(): number[] {
    return [...this.tracks.keys()].sort((a, b) => a - b);
  }
}
