/**
 * The status page: one static HTML document, inline CSS and JS, no external resources (the
 * device may have no internet, and a page that loads nothing from elsewhere leaks nothing).
 * The script polls /api/status every second and sets the preview's src only after load, so
 * no frame is ever requested before the page is actually open.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fghv-kiosk status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
  header { padding: 8px 16px; background: #222; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  h1 { font-size: 18px; margin: 0; }
  h2 { font-size: 15px; margin: 12px 0 4px; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
  section { min-width: 280px; }
  #preview { display: block; width: 640px; max-width: 100%; background: #000; min-height: 120px; }
  .notice { background: #332b00; color: #ffd; padding: 6px 10px; margin: 6px 0; max-width: 640px; }
  .warn { color: #fc6; }
  table { border-collapse: collapse; }
  td, th { padding: 2px 8px; border-bottom: 1px solid #333; text-align: left; white-space: nowrap; }
  .accept { color: #4f4; } .reject { color: #f55; } .retry { color: #fc4; }
  .up { color: #4f4; } .down { color: #f55; }
</style>
</head>
<body>
<header><h1>fghv-kiosk</h1><span id="device"></span><span id="software"></span><span>updated <span id="updated">never</span></span></header>
<main>
<section>
  <h2>Live preview</h2>
  <p class="notice" id="privacy">Preview frames are drawn and sent only while this page is open, and only to this browser.
  With no page open, no camera image leaves the device.</p>
  <img id="preview" alt="live camera preview with face boxes, landmarks, quality gates and liveness scores">
  <p>Boxes: <span style="color:#0f0">live</span>, <span style="color:#f00">spoof</span>,
  <span style="color:#fa0">uncertain</span>, <span style="color:#ff0">quality gate failed</span>;
  cyan dots: landmarks.</p>
</section>
<section>
  <h2>Model</h2>
  <table><tbody>
    <tr><th>liveness model</th><td id="model">?</td></tr>
    <tr><th>purpose</th><td id="purpose">?</td></tr>
    <tr><th>detector</th><td id="detector">?</td></tr>
    <tr><th>execution provider</th><td id="provider">?</td></tr>
    <tr><th>threshold overrides</th><td id="overrides">?</td></tr>
    <tr><th>config hash</th><td id="confighash">?</td></tr>
  </tbody></table>
  <h2>Frames</h2>
  <table><tbody>
    <tr><th>captured</th><td id="captured">?</td></tr>
    <tr><th>processed</th><td id="processed">?</td></tr>
    <tr><th>dropped (newest wins)</th><td id="dropped">?</td></tr>
    <tr><th>stale</th><td id="stale">?</td></tr>
  </tbody></table>
  <h2>Cameras</h2>
  <table><thead><tr><th>id</th><th>state</th><th>guidance</th><th>fps in</th><th>fps done</th><th>down for</th><th>next attempt</th><th>error</th></tr></thead><tbody id="cameras"></tbody></table>
  <h2>MQTT and audit</h2>
  <table><tbody>
    <tr><th>connected</th><td id="mqtt-connected">?</td></tr>
    <tr><th>queued / published / dropped</th><td id="mqtt-counts">?</td></tr>
    <tr><th>audit backlog</th><td id="audit">?</td></tr>
  </tbody></table>
  <h2>Health</h2>
  <table><tbody id="health"></tbody></table>
  <h2>Stage latency (ms)</h2>
  <table><thead><tr><th>stage</th><th>p50</th><th>p95</th><th>n</th></tr></thead><tbody id="latency"></tbody></table>
</section>
<section>
  <h2>Site acceptance drill</h2>
  <p>Record labelled presentations on this camera to measure BPCER and APCER
  (<code>fghv-kiosk drill report</code> on the device makes the full report).</p>
  <p><button id="drill-start">Start drill</button> <button id="drill-stop">Stop drill</button></p>
  <p><button id="drill-bona">Bona fide</button> <input id="drill-subject" placeholder="who (optional)" size="12">
  <button id="drill-attack">Attack</button> <input id="drill-type" placeholder="print, replay, ..." size="12">
  <button id="drill-end">End presentation</button></p>
  <p id="drill-status">no drill</p>
  <h2>Last decisions</h2>
  <table><thead><tr><th>time</th><th>camera</th><th>track</th><th>decision</th><th>reason</th><th>scores</th><th>frames live/inferred/seen</th></tr></thead>
  <tbody id="decisions"></tbody></table>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const show = (v) => (v === null || v === undefined ? "n/a" : String(v));
/** While a camera is down: "when it is back" (watched), "in N s" (backoff) or "now" (opening). */
function nextAttempt(c) {
  if (c.down_s === null || c.down_s === undefined) return "";
  if (c.waiting_for === "source") return "when the source is back";
  return c.next_attempt_in_s ? "in " + c.next_attempt_in_s + " s" : "now";
}
function row(cells, cls) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = show(c); tr.appendChild(td); }
  if (cls) tr.className = cls;
  return tr;
}
function fill(id, rows) { $(id).replaceChildren(...rows); }
function scores(s) {
  return Object.entries(s || {}).filter(([, v]) => v !== null).map(([k, v]) => k + "=" + Number(v).toFixed(2)).join(" ");
}
async function refresh() {
  try {
    const res = await fetch("api/status", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const s = await res.json();
    $("device").textContent = s.device_id;
    $("software").textContent = s.software.name + " " + s.software.version;
    $("model").textContent = s.model ? s.model.name + " " + s.model.version + " (" + s.model.family + ")" : "none";
    $("purpose").textContent = s.model ? s.model.purpose : "n/a";
    $("purpose").className = s.model && s.model.purpose !== "production" ? "warn" : "";
    $("detector").textContent = s.detector ? s.detector.name : "none";
    $("provider").textContent = show(s.execution_provider);
    $("overrides").textContent = s.threshold_overrides ? JSON.stringify(s.threshold_overrides) : "none";
    $("overrides").className = s.threshold_overrides ? "warn" : "";
    $("confighash").textContent = show(s.config_hash);
    for (const k of ["captured", "processed", "dropped", "stale"]) $(k).textContent = String(s.totals[k]);
    fill("cameras", s.cameras.map((c) => row([c.id, c.state, c.guidance, c.fps && c.fps.capture, c.fps && c.fps.processed, c.down_s == null ? "" : c.down_s + " s", nextAttempt(c), c.error], c.state === "running" ? "up" : "down")));
    $("mqtt-connected").textContent = s.mqtt ? (s.mqtt.connected ? "yes" : "no") : "n/a";
    $("mqtt-counts").textContent = s.mqtt ? s.mqtt.queued + " / " + s.mqtt.published + " / " + s.mqtt.dropped : "n/a";
    $("audit").textContent = show(s.audit_backlog);
    const sys = s.system || {};
    fill("health", [
      row(["uptime (s)", s.uptime_s]), row(["CPU load (%)", sys.cpu_load_pct]), row(["memory used (%)", sys.mem_used_pct]),
      row(["process RSS (MB)", sys.process_rss_mb]), row(["CPU temperature (C)", sys.cpu_temp_c]),
      row(["preview viewers", s.preview.clients]),
    ]);
    fill("latency", Object.entries(s.latency_ms).map(([k, f]) => row([k, f.p50, f.p95, f.n])));
    fill("decisions", s.decisions.map((d) => row([
      d.ts.slice(11, 23), d.camera_id, d.track_id, d.decision,
      d.reason + (d.quality_gate ? ": " + d.quality_gate : ""), scores(d.scores), d.frames.live + "/" + (d.frames.inferred ?? "?") + "/" + d.frames.seen,
    ], d.decision)));
    $("updated").textContent = new Date().toLocaleTimeString();
  } catch (e) {
    $("updated").textContent = "failed: " + e.message;
  }
}
function drillText(d) {
  if (!d.running) return d.dir ? "stopped; record and report in " + d.dir : "no drill";
  const p = d.presentation;
  return "drill " + d.id + " on " + d.camera + ": " + d.recorded + " recorded" +
    (p ? "; now " + (p.label === "attack" ? "attack " + p.attack_type : "bona fide") + ", " + p.frames + " frames, decisions: " + (p.decisions.join(", ") || "none") : "") +
    (d.last ? "; last " + d.last : "");
}
async function drill(action, body) {
  try {
    const res = await fetch(action ? "api/drill/" + action : "api/drill", action
      ? { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) }
      : { cache: "no-store" });
    const d = await res.json();
    $("drill-status").textContent = d.error ? d.error.code + ": " + d.error.message : drillText(d);
  } catch (e) {
    $("drill-status").textContent = "failed: " + e.message;
  }
}
window.addEventListener("load", () => {
  $("drill-start").onclick = () => drill("start");
  $("drill-stop").onclick = () => drill("stop");
  $("drill-bona").onclick = () => drill("label", { label: "bona_fide", subject: $("drill-subject").value || undefined });
  $("drill-attack").onclick = () => drill("label", { label: "attack", type: $("drill-type").value });
  $("drill-end").onclick = () => drill("label", { label: "none" });
  setInterval(() => drill(), 1000);
  $("preview").src = "preview.mjpeg";
  refresh();
  setInterval(refresh, 1000);
});
</script>
</body>
</html>
`;
