/**
 * GStreamer pipeline strings for the common kiosk cameras, ready for `kind: gstreamer`. Each
 * ends in an appsink that keeps one buffer and drops older ones, so a slow pipeline never
 * makes the camera queue frames (newest frame wins at the source too).
 */

const SINK = 'videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false';

/** Jetson CSI camera through Argus; the NVMM buffer is converted on the VIC, not the CPU. */
export function jetsonCsiPipeline(o: {
  sensorId?: number;
  width: number;
  height: number;
  fps: number;
}): string {
  return (
    `nvarguscamerasrc sensor-id=${o.sensorId ?? 0} ! ` +
    `video/x-raw(memory:NVMM),width=${o.width},height=${o.height},framerate=${o.fps}/1 ! ` +
    `nvvidconv ! video/x-raw,format=BGRx ! ${SINK}`
  );
}

/** USB (UVC) camera; MJPEG reaches full rate at high resolutions where raw YUYV cannot. */
export function usbCameraPipeline(o: {
  device: string;
  width: number;
  height: number;
  fps: number;
  format?: 'mjpeg' | 'yuyv';
}): string {
  const src = `v4l2src device=${o.device}`;
  const size = `width=${o.width},height=${o.height},framerate=${o.fps}/1`;
  if ((o.format ?? 'mjpeg') === 'mjpeg') return `${src} ! image/jpeg,${size} ! jpegdec ! ${SINK}`;
  return `${src} ! video/x-raw,format=YUY2,${size} ! ${SINK}`;
}

/** RTSP over TCP (no UDP loss on busy networks) with a small jitter buffer; any codec decodebin knows. */
export function rtspPipeline(o: { url: string; latencyMs?: number }): string {
  return `rtspsrc location=${o.url} latency=${o.latencyMs ?? 200} protocols=tcp ! decodebin ! ${SINK}`;
}
