/**
 * The fleet console's page: one self-contained HTML document (no external resources, CSP
 * allows only same-origin requests), polling `/api/fleet` every 2 s. Every value from the
 * broker is text-escaped before it reaches the DOM: device ids and payloads are written by
 * whoever can publish on the broker.
 */
export const FLEET_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fghv-kiosk fleet</title>
<style>
body{font:13px system-ui,sans-serif;margin:12px;color:#222}
h1{font-size:18px;margin:0 0 8px}
#totals span{margin-right:16px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;white-space:nowrap}
tr.flagged td{background:#fff1e6}
.off{color:#999}.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}
.flag{display:inline-block;background:#b42318;color:#fff;border-radius:3px;padding:0 4px;margin-right:3px;font-size:11px}
</style></head><body>
<h1>fghv-kiosk fleet</h1>
<div id="totals"><span>devices <b id="devices">-</b></span><span>online <b id="online">-</b></span>
<span>flagged <b id="flagged">-</b></span><span>decisions/min <b id="rate">-</b></span>
<span>broker <b id="broker">-</b></span><span id="updated"></span></div>
<p><label><input type="checkbox" id="only-flagged"> flagged only</label></p>
<table><thead><tr><th>device</th><th>online</th><th>model</th><th>cameras</th><th>fps</th>
<th>decisions/min (a/r/t)</th><th>clock skew (s)</th><th>last decision</th><th>signature</th><th>flags</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
const $ = (id) => document.getElementById(id);
function row(d) {
  const m = d.model ? esc(d.model.name) + ' ' + esc(d.model.version) + ' (' + esc(d.model.purpose) + ')' : '-';
  const cams = d.cameras.map((c) => esc(c.id) + ':' + esc(c.state ?? '?')).join(' ');
  const fps = d.fps ? esc(d.fps.capture) + '/' + esc(d.fps.processed) : '-';
  const r = d.decisions_per_min;
  const l = d.last_decision;
  const last = l ? esc(l.decision) + ' #' + esc(l.seq) + ' ' + esc(l.camera_id) : '-';
  const sig = !l ? '-' : l.verified ? '<span class="ok">verified</span>' : '<span class="bad">' + esc(l.problem) + '</span>';
  const flags = d.flags.map((f) => '<span class="flag">' + esc(f) + '</span>').join('');
  return '<tr data-device="' + esc(d.device_id) + '"' + (d.flags.length ? ' class="flagged"' : '') + '><td>' +
    esc(d.device_id) + '</td><td class="' + (d.online ? 'ok">online' : 'off">offline') + '</td><td>' + m +
    '</td><td>' + cams + '</td><td>' + fps + '</td><td>' + r.accept + '/' + r.reject + '/' + r.retry +
    '</td><td>' + esc(d.clock_skew_s ?? '-') + '</td><td>' + last + '</td><td class="sig">' + sig +
    '</td><td>' + flags + '</td></tr>';
}
async function tick() {
  try {
    const res = await fetch('api/fleet', { cache: 'no-store' });
    const f = await res.json();
    $('devices').textContent = f.totals.devices;
    $('online').textContent = f.totals.online;
    $('flagged').textContent = f.totals.flagged;
    $('rate').textContent = f.totals.decisions_per_min;
    $('broker').textContent = f.broker;
    $('updated').textContent = 'updated ' + new Date(f.generated_at).toLocaleTimeString();
    const only = $('only-flagged').checked;
    $('rows').innerHTML = f.devices.filter((d) => !only || d.flags.length).map(row).join('');
  } catch (e) {
    $('updated').textContent = 'update failed: ' + e.message;
  }
}
tick();
setInterval(tick, 2000);
</script></body></html>
`;
