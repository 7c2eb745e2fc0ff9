/**
 * `fghv-kiosk cameras`: what capture hardware and backends this machine has. Lists
 * /dev/video* with their formats and sizes (v4l2-ctl, Debian v4l-utils, when installed) and
 * whether GStreamer, ffmpeg and fswebcam are available, so a site engineer can write the
 * camera section without guessing.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { openCvHasGStreamer } from '../../drivers/camera/opencv-capture.js';

export interface VideoMode {
  format: string;
  sizes: string[];
}

/** Parse `v4l2-ctl --list-formats-ext`: pixel formats and their frame sizes (with rates). */
export function parseFormats(text: string): VideoMode[] {
  const modes: VideoMode[] = [];
  let current: VideoMode | null = null;
  for (const line of text.split('\n')) {
    const fmt = /^\s*\[\d+\]:\s*'(\w+)'/.exec(line);
    if (fmt) {
      current = { format: fmt[1] as string, sizes: [] };
      modes.push(current);
      continue;
    }
    const size = /Size:\s*\w+\s+(\d+x\d+)/.exec(line);
    if (size && current) {
      current.sizes.push(size[1] as string);
      continue;
    }
    const rate = /Interval:.*\(([\d.]+) fps\)/.exec(line);
    if (rate && current?.sizes.length) {
      const i = current.sizes.length - 1;
      current.sizes[i] =
        `${current.sizes[i]}${current.sizes[i]?.includes('@') ? ',' : '@'}${Number(rate[1])}`;
    }
  }
  return modes;
}

function tool(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function listCameras(devDir = '/dev'): string {
  const lines: string[] = [];
  let devices: string[] = [];
  try {
    devices = readdirSync(devDir)
      .filter((n) => /^video\d+$/.test(n))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
      .map((n) => `${devDir}/${n}`);
  } catch {}
  const v4l2ctl = tool('v4l2-ctl', ['--version']).ok;
  if (!devices.length) lines.push('no video devices (/dev/video*)');
  for (const dev of devices) {
    if (!v4l2ctl) {
      lines.push(`${dev}  (install v4l-utils to list its formats)`);
      continue;
    }
    const name = /Card type\s*:\s*(.+)/.exec(tool('v4l2-ctl', ['-d', dev, '--info']).out)?.[1]?.trim();
    lines.push(`${dev}  ${name ?? ''}`.trimEnd());
    const modes = parseFormats(tool('v4l2-ctl', ['-d', dev, '--list-formats-ext']).out);
    if (!modes.length) lines.push('  no capture formats (a metadata node?)');
    for (const m of modes) lines.push(`  ${m.format}: ${m.sizes.join(' ') || '(no sizes listed)'}`);
  }
  const ffmpeg = tool('ffmpeg', ['-hide_banner', '-version']);
  const gst = tool('gst-launch-1.0', ['--version']);
  const version = (t: { ok: boolean; out: string }) =>
    t.ok ? (t.out.split('\n')[0] ?? '').trim() : 'not installed';
  lines.push('', 'capture backends:');
  lines.push(`  v4l2-ctl:  ${v4l2ctl ? 'installed' : 'not installed (Debian v4l-utils)'}`);
  lines.push(`  ffmpeg:    ${version(ffmpeg)}`);
  lines.push(
    `  gstreamer: ${version(gst)}; OpenCV GStreamer support: ${openCvHasGStreamer() ? 'yes' : 'no'}`,
  );
  lines.push(
    `  fswebcam:  ${tool('fswebcam', ['--version']).ok ? 'installed (low-rate snapshot fallback)' : 'not installed (optional)'}`,
  );
  return `${lines.join('\n')}\n`;
}
