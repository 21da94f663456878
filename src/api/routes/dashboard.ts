// GET /dashboard: a small live page over the API (supervisors, their questions and the last restoration), no build step.

import type { FastifyInstance } from 'fastify';

export const DASHBOARD_PATHS = ['/', '/dashboard'];

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supervisor-runtime</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fafbfc}
 h1{font-size:20px;margin:0 0 4px} .muted{color:#667} table{border-collapse:collapse;width:100%;margin:12px 0 24px;background:#fff}
 th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top} th{background:#f1f3f5;font-weight:600}
 .state{display:inline-block;padding:1px 8px;border-radius:10px;background:#e8eef7;font-size:12px}
 .completed{background:#dcf3e2}.failed,.interrupted{background:#fbe1e1}.waiting_for_user{background:#fff2cc}.waiting_for_tasks{background:#e6e1fb}
 .bar{height:6px;background:#e3e6ea;border-radius:3px;width:120px}.bar>div{height:6px;background:#4c7bd9;border-radius:3px}
 #error{color:#b00020}
</style></head>
<body>
<h1>supervisor-runtime</h1>
<div class="muted">Live view of this daemon. Refreshes every second. <span id="health"></span> <span id="error"></span></div>
<h2>Supervisors <span class="muted" id="count"></span></h2>
<table id="supervisors"><thead><tr><th>name</th><th>state</th><th>phase</th><th>progress</th><th>activity</th><th>questions</th><th>tasks</th><th>restored</th></tr></thead><tbody></tbody></table>
<h2>Pending questions</h2>
<table id="questions"><thead><tr><th>supervisor</th><th>question</th><th>choices</th><th>deliveries</th><th>id</th></tr></thead><tbody></tbody></table>
<h2>Restoration at start</h2>
<div id="restorations" class="muted"></div>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const headers = token ? { authorization: 'Bearer ' + token } : {};
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function get(path) { const r = await fetch(path, { headers }); if (!r.ok && r.status !== 503) throw new Error(path + ': ' + r.status); return r.json(); }
async function refresh() {
  try {
    const [list, health, restorations] = await Promise.all([get('/supervisors'), get('/healthz'), get('/restorations')]);
    document.getElementById('error').textContent = '';
    document.getElementById('health').textContent = 'database ' + (health.database.ok ? 'ok' : 'DOWN') + ', transport ' + health.transport.kind + ' ' + (health.transport.ok ? 'ok' : 'DOWN') + '.';
    document.getElementById('count').textContent = '(' + list.supervisors.length + ')';
    document.querySelector('#supervisors tbody').innerHTML = list.supervisors.map((s) =>
      '<tr><td>' + esc(s.name) + '<div class="muted">' + esc(s.id) + '</div></td><td><span class="state ' + esc(s.state) + '">' + esc(s.state) + '</span></td><td>' + esc(s.phase) +
      '</td><td><div class="bar"><div style="width:' + Number(s.progress) + '%"></div></div>' + Number(s.progress) + '%</td><td>' + esc(s.currentActivity) +
      '</td><td>' + s.pendingQuestions.length + '</td><td>' + s.spawnedTaskIds.length + '</td><td>' + s.restorationCount + (s.restorationSource ? ' (' + esc(s.restorationSource) + ')' : '') + '</td></tr>').join('');
    document.querySelector('#questions tbody').innerHTML = list.supervisors.flatMap((s) => s.pendingQuestions.map((q) =>
      '<tr><td>' + esc(s.name) + '</td><td>' + esc(q.question) + '</td><td>' + esc((q.choices || []).join(' / ')) + '</td><td>' + q.deliveryCount + '</td><td class="muted">' + esc(q.id) + '</td></tr>')).join('');
    document.getElementById('restorations').textContent = restorations.total === 0 ? 'Nothing was restored when this daemon started.' :
      restorations.restored + ' of ' + restorations.total + ' restored (' + restorations.fromCheckpoint + ' from a checkpoint, ' + restorations.startedFresh + ' fresh, ' + restorations.failed.length + ' failed) in ' + restorations.durationMs + ' ms.';
  } catch (e) { document.getElementById('error').textContent = String(e); }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>`;

export function registerDashboardRoutes(app: FastifyInstance): void {
  for (const path of DASHBOARD_PATHS) {
    app.get(path, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(PAGE));
  }
}
