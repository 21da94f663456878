// The dashboard: one static page (no build step, no data in it) over the API. It lists the supervisors a page at a
// time (GET /supervisors' `next` cursor; `?pageSize=` in the page's address, default 100), answers their
// questions, shows one supervisor in full (tasks, state timeline from checkpoints, restorations, conversation), and
// stays live on GET /live (the runtime's registry as Server-Sent Events). A daemon with a token asks for it once and
// keeps it in the browser session.
//
// The client code is plain ES2020 in a String.raw template: no backticks and no dollar-brace sequences inside it.

export const DASHBOARD_HTML = String.raw`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supervisor-runtime</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 :root{--line:#e3e6ea;--muted:#667085;--ink:#1b1f24;--accent:#3a6fd8}
 *{box-sizing:border-box}
 body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:var(--ink);background:#f6f7f9}
 header{display:flex;flex-wrap:wrap;align-items:center;gap:12px;padding:12px 24px;background:#fff;border-bottom:1px solid var(--line)}
 header h1{font-size:17px;margin:0} header h1 a{color:inherit;text-decoration:none}
 main{padding:16px 24px;max-width:1280px}
 h2{font-size:15px;margin:22px 0 8px} h3{font-size:14px;margin:18px 0 6px}
 a{color:var(--accent)} .muted{color:var(--muted)} .mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
 table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:6px}
 th,td{text-align:left;padding:7px 9px;border-bottom:1px solid var(--line);vertical-align:top} th{background:#f1f3f5;font-weight:600;font-size:13px}
 tr:last-child td{border-bottom:0}
 .state{display:inline-block;padding:1px 8px;border-radius:10px;background:#e8eef7;font-size:12px;white-space:nowrap}
 .completed{background:#dcf3e2}.failed,.interrupted{background:#fbe1e1}.waiting_for_user{background:#fff2cc}.waiting_for_tasks{background:#e6e1fb}.working{background:#dbeafe}
 .running{background:#dbeafe}.pending{background:#eef0f3}
 .bar{height:6px;background:var(--line);border-radius:3px;width:110px;display:inline-block;vertical-align:middle;margin-right:6px}.bar>div{height:6px;background:var(--accent);border-radius:3px}
 .pill{display:inline-flex;align-items:center;gap:6px;padding:2px 10px;border-radius:12px;font-size:12px;background:#eef0f3}
 .pill.ok::before,.pill.down::before,.pill.off::before{content:"";width:8px;height:8px;border-radius:50%;background:#2e9d5b}
 .pill.down::before{background:#d13c3c}.pill.off::before{background:#9aa1ab}
 .badge{display:block;margin:12px 24px 0;padding:10px 14px;border-radius:6px;background:#fff4d6;border:1px solid #f0d58a}
 .badge strong{margin-right:6px}
 .answer{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
 .answer button,.login button{font:inherit;padding:4px 12px;border-radius:5px;border:1px solid #b9c2cf;background:#fff;cursor:pointer}
 .answer button:hover{border-color:var(--accent);color:var(--accent)}
 .answer input,.login input{font:inherit;padding:4px 8px;border:1px solid #b9c2cf;border-radius:5px;min-width:220px}
 .answer .problem{color:#b00020;flex-basis:100%} .answer .done{color:#2e7d32;flex-basis:100%}
 .login{max-width:460px;margin:48px auto;padding:20px 24px;background:#fff;border:1px solid var(--line);border-radius:8px}
 .login form{display:flex;gap:8px;margin-top:12px}
 .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin:10px 0}
 .card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px}.card .k{font-size:12px;color:var(--muted)}
 .timeline{list-style:none;margin:0;padding:0 0 0 4px;background:#fff;border:1px solid var(--line);border-radius:6px}
 .timeline li{padding:6px 10px 6px 22px;border-bottom:1px solid var(--line);position:relative}
 .timeline li::before{content:"";position:absolute;left:8px;top:12px;width:8px;height:8px;border-radius:50%;background:var(--accent)}
 .timeline li:last-child{border-bottom:0}
 .conversation{background:#fff;border:1px solid var(--line);border-radius:6px}
 .conversation div{padding:7px 10px;border-bottom:1px solid var(--line);white-space:pre-wrap}.conversation div:last-child{border-bottom:0}
 .role{display:inline-block;min-width:72px;font-weight:600;font-size:12px;color:var(--muted)}
 .pager{display:flex;align-items:center;gap:10px;margin:8px 0}
 .pager button{font:inherit;padding:3px 12px;border-radius:5px;border:1px solid #b9c2cf;background:#fff;cursor:pointer}.pager button:disabled{cursor:default;opacity:.5}
 .timeline button{font:inherit;font-size:12px;padding:1px 8px;margin-left:6px;border-radius:5px;border:1px solid #b9c2cf;background:#fff;cursor:pointer}.timeline button:disabled{opacity:.5}
 #error{color:#b00020}
 [hidden]{display:none!important}
</style></head>
<body>
<header>
 <h1><a href="#/">supervisor-runtime</a></h1>
 <span id="live" class="pill off">connecting</span>
 <span id="health" class="pill off">health</span>
 <span id="daemon" class="muted mono"></span>
 <span id="error"></span>
</header>
<div id="badges"></div>

<section id="login" class="login" hidden>
 <strong>This daemon needs its API token.</strong>
 <div class="muted">It is the daemon's SUPERVISOR_RUNTIME_TOKEN. The page keeps it for this browser session only.</div>
 <form id="login-form"><input id="token" type="password" autocomplete="current-password" placeholder="token" aria-label="API token"><button type="submit">Open</button></form>
 <div id="login-problem" class="muted"></div>
</section>

<main id="list-view" hidden>
 <h2>Supervisors <span class="muted" id="count"></span></h2>
 <div id="pager" class="pager" hidden><button type="button" id="page-prev">&larr; Newer</button><span id="page-info" class="muted"></span><button type="button" id="page-next">Older &rarr;</button></div>
 <table id="supervisors"><thead><tr><th>name</th><th>state</th><th>phase</th><th>progress</th><th>activity</th><th>questions</th><th>tasks</th><th>restored</th></tr></thead><tbody></tbody></table>
 <h2>Pending questions</h2>
 <table id="questions"><thead><tr><th>supervisor</th><th>question</th><th>answer</th><th>deliveries</th></tr></thead><tbody></tbody></table>
 <h2>Restoration at start</h2>
 <div id="restorations" class="muted"></div>
</main>

<main id="detail-view" hidden>
 <div><a href="#/">&larr; all supervisors</a></div>
 <h2 id="detail-title"></h2>
 <div id="detail-cards" class="cards"></div>
 <div id="detail-actions" class="answer"></div>
 <div id="detail-error" class="muted"></div>
 <h3>Pending questions</h3>
 <table id="detail-questions"><thead><tr><th>question</th><th>answer</th><th>asked</th><th>deliveries</th></tr></thead><tbody></tbody></table>
 <h3>Tasks</h3>
 <table id="detail-tasks"><thead><tr><th>task</th><th>status</th><th>progress</th><th>result</th><th>updated</th></tr></thead><tbody></tbody></table>
 <h3>Restorations</h3>
 <div id="detail-restorations"></div>
 <h3>Messages <span class="muted">(with other supervisors, newest first)</span></h3>
 <table id="detail-messages"><thead><tr><th></th><th>supervisor</th><th>message</th><th>sent</th></tr></thead><tbody></tbody></table>
 <h3>Forks</h3>
 <div id="detail-forks"></div>
 <h3>State timeline <span class="muted">(checkpoints, newest first; fork one to try again from there)</span></h3>
 <div id="fork-problem" class="problem"></div>
 <ol id="detail-timeline" class="timeline"></ol>
 <h3>Conversation <span class="muted" id="conversation-count"></span></h3>
 <div id="detail-conversation" class="conversation"></div>
</main>

<script>
(function () {
  'use strict';
  var TOKEN_KEY = 'supervisor-runtime.token';
  var hashToken = /[#&]token=([^&]+)/.exec(location.hash);
  if (hashToken) {
    // An older link with the token in it: keep it for the session and take it out of the address bar.
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(hashToken[1]));
    history.replaceState(null, '', location.pathname + location.search + '#/');
  }
  var $ = function (id) { return document.getElementById(id); };
  var esc = function (v) { return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; }); };
  var when = function (iso) { return iso ? new Date(iso).toLocaleString() : ''; };
  var sleep = function (ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); };

  // The list shows one page of GET /supervisors at a time: cursors[i] is the "after" of page i (null for the first).
  var requestedSize = Number(new URLSearchParams(location.search).get('pageSize'));
  var PAGE_SIZE = requestedSize >= 1 && requestedSize <= 1000 ? Math.floor(requestedSize) : 100;
  var state = {
    supervisors: new Map(), invalid: [], asking: new Map(), registry: new Map(), warnings: new Map(),
    page: { cursors: [null], next: null, total: 0, busy: false },
    restorations: null, resuming: false, resumeProblem: null, detail: null, detailId: null, drafts: new Map(), answering: new Map(), needToken: false, streamAbort: null,
  };

  function ApiError(status, body, path) { this.status = status; this.body = body; this.message = (body && body.message) || (path + ': HTTP ' + status); }
  function authHeaders(extra) {
    var headers = Object.assign({}, extra || {});
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = 'Bearer ' + token;
    return headers;
  }
  async function api(path, options) {
    options = options || {};
    var init = { method: options.method || 'GET', headers: authHeaders(options.body ? { 'content-type': 'application/json' } : {}) };
    if (options.body) init.body = JSON.stringify(options.body);
    var response = await fetch(path, init);
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) { askForToken(sessionStorage.getItem(TOKEN_KEY) ? 'That token was refused.' : ''); throw new ApiError(401, body, path); }
    if (!response.ok) throw new ApiError(response.status, body, path);
    return body;
  }

  // ---- token -------------------------------------------------------------------------------------------------
  function askForToken(problem) {
    state.needToken = true;
    if (state.streamAbort) state.streamAbort.abort();
    $('login').hidden = false; $('list-view').hidden = true; $('detail-view').hidden = true;
    $('login-problem').textContent = problem || '';
    setPill('live', 'off', 'not connected');
    $('token').focus();
  }
  $('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var value = $('token').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token').value = '';
    state.needToken = false;
    $('login').hidden = true;
    start();
  });

  // ---- header ------------------------------------------------------------------------------------------------
  function setPill(id, kind, text) { var el = $(id); el.className = 'pill ' + kind; el.textContent = text; }
  async function refreshHealth() {
    try {
      var response = await fetch('/healthz');
      var health = await response.json();
      var text = 'database ' + (health.database.ok ? 'ok' : 'DOWN') + ', transport ' + health.transport.kind + ' ' + (health.transport.ok ? 'ok' : 'DOWN');
      setPill('health', health.ok ? 'ok' : 'down', text);
    } catch (e) { setPill('health', 'down', 'daemon not answering'); }
  }
  function renderBadges() {
    var html = '';
    state.warnings.forEach(function (warning) {
      html += '<div class="badge" data-warning="' + esc(warning.key) + '"><strong>' + esc(warning.key) + '</strong>' + esc(warning.message) + ' <span class="muted">since ' + esc(when(warning.since)) + '</span></div>';
    });
    state.registry.forEach(function (entry) {
      if (entry.degraded) html += '<div class="badge" data-warning="degraded"><strong>degraded</strong>' + esc(entry.name) + ' waits for the database; it resumes by itself when the database answers.</div>';
    });
    $('badges').innerHTML = html;
  }

  // ---- answering ---------------------------------------------------------------------------------------------
  function answerControls(supervisorId, question) {
    var key = supervisorId + '/' + question.id;
    var status = state.answering.get(key);
    var attrs = ' data-supervisor="' + esc(supervisorId) + '" data-question="' + esc(question.id) + '"';
    var html = '<div class="answer"' + attrs + '>';
    var busy = status && status.busy ? ' disabled' : '';
    if (question.choices && question.choices.length) {
      question.choices.forEach(function (choice) { html += '<button type="button" data-answer="' + esc(choice) + '"' + busy + '>' + esc(choice) + '</button>'; });
    } else {
      html += '<form class="answer-form"><input name="answer" placeholder="your answer" aria-label="answer" value="' + esc(state.drafts.get(key) || '') + '"' + busy + '><button type="submit"' + busy + '>Send</button></form>';
    }
    if (status && status.problem) html += '<span class="problem">' + esc(status.problem) + '</span>';
    return html + '</div>';
  }
  async function submitAnswer(supervisorId, questionId, answer) {
    var key = supervisorId + '/' + questionId;
    if (!answer) { state.answering.set(key, { problem: 'Type an answer first.' }); render(); return; }
    state.answering.set(key, { busy: true });
    render();
    try {
      var reply = await api('/supervisors/' + encodeURIComponent(supervisorId) + '/questions/' + encodeURIComponent(questionId) + '/answer', { method: 'POST', body: { answer: answer } });
      state.answering.delete(key);
      state.drafts.delete(key);
      if (reply && reply.supervisor) put(reply.supervisor);
      if (state.detailId === supervisorId) await refreshDetail();
    } catch (error) {
      state.answering.set(key, { problem: error.message });
    }
    render();
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-answer]');
    if (!button) return;
    var box = button.closest('.answer');
    submitAnswer(box.dataset.supervisor, box.dataset.question, button.dataset.answer);
  });
  document.addEventListener('click', function (event) {
    if (!event.target.closest || !event.target.closest('#resume')) return;
    resume(state.detailId);
  });
  // A checkpoint's fork button: a new supervisor from that checkpoint (as "supervisor-runtime fork" does), then its page.
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-fork]');
    if (!button) return;
    fork(state.detailId, Number(button.dataset.fork), button);
  });
  async function fork(id, seq, button) {
    button.disabled = true;
    $('fork-problem').textContent = '';
    try {
      var made = await api('/supervisors/' + encodeURIComponent(id) + '/fork', { method: 'POST', body: { checkpointSeq: seq } });
      location.hash = '#/supervisors/' + made.supervisor.id;
    } catch (error) {
      $('fork-problem').textContent = error.message;
      button.disabled = false;
    }
  }
  async function resume(id) {
    state.resuming = true;
    state.resumeProblem = null;
    render();
    try {
      await api('/supervisors/' + encodeURIComponent(id) + '/resume', { method: 'POST', body: {} });
      await refreshDetail();
    } catch (error) {
      state.resumeProblem = error.message;
    }
    state.resuming = false;
    render();
  }
  document.addEventListener('submit', function (event) {
    if (!event.target.classList.contains('answer-form')) return;
    event.preventDefault();
    var box = event.target.closest('.answer');
    submitAnswer(box.dataset.supervisor, box.dataset.question, event.target.elements.answer.value.trim());
  });
  document.addEventListener('input', function (event) {
    var box = event.target.closest && event.target.closest('.answer');
    if (box && event.target.name === 'answer') state.drafts.set(box.dataset.supervisor + '/' + box.dataset.question, event.target.value);
  });

  // ---- rendering ---------------------------------------------------------------------------------------------
  function stateBadge(value) { return '<span class="state ' + esc(value) + '">' + esc(value) + '</span>'; }
  function bar(progress) { var p = Math.max(0, Math.min(100, Number(progress) || 0)); return '<span class="bar"><div style="width:' + p + '%"></div></span>' + p + '%'; }
  function sorted(map) {
    return Array.from(map.values()).sort(function (a, b) { return (b.createdAt || '').localeCompare(a.createdAt || '') || b.id.localeCompare(a.id); });
  }
  /** Re-rendering replaces the answer boxes: keep the focused one focused. */
  function keepFocus(paint) {
    var active = document.activeElement;
    var box = active && active.closest && active.closest('.answer');
    var key = box ? box.dataset.supervisor + '/' + box.dataset.question : null;
    paint();
    if (!key) return;
    var again = document.querySelector('.answer[data-supervisor="' + key.split('/')[0] + '"][data-question="' + key.split('/')[1] + '"] input');
    if (again) { again.focus(); again.setSelectionRange(again.value.length, again.value.length); }
  }
  function renderList() {
    var list = sorted(state.supervisors);
    var page = state.page;
    var shown = list.length + state.invalid.length;
    var first = (page.cursors.length - 1) * PAGE_SIZE;
    var range = shown === 0 ? '0' : (first + 1) + '–' + (first + shown);
    $('count').textContent = '(' + range + ' of ' + page.total + (state.invalid.length ? ', ' + state.invalid.length + ' invalid here' : '') + ')';
    $('pager').hidden = page.cursors.length === 1 && !page.next;
    $('page-info').textContent = 'page ' + page.cursors.length + ' · ' + range + ' of ' + page.total;
    $('page-prev').disabled = page.busy || page.cursors.length === 1;
    $('page-next').disabled = page.busy || !page.next;
    $('supervisors').querySelector('tbody').innerHTML = list.map(function (s) {
      return '<tr data-id="' + esc(s.id) + '"><td><a href="#/supervisors/' + esc(s.id) + '">' + esc(s.name) + '</a><div class="muted mono">' + esc(s.id) + '</div></td><td>' + stateBadge(s.state) + '</td><td>' + esc(s.phase) +
        '</td><td>' + bar(s.progress) + '</td><td>' + esc(s.currentActivity) + '</td><td>' + s.pendingQuestions.length + '</td><td>' + s.spawnedTaskIds.length +
        '</td><td>' + s.restorationCount + (s.restorationSource ? ' <span class="muted">(' + esc(s.restorationSource) + ')</span>' : '') + '</td></tr>';
    }).join('') + state.invalid.map(function (row) {
      return '<tr><td class="mono">' + esc(row.id) + '</td><td colspan="7">' + stateBadge('invalid') + ' ' + esc(row.problems.join('; ')) + '</td></tr>';
    }).join('');
    var r = state.restorations;
    $('restorations').textContent = !r ? '' : r.total === 0 ? 'Nothing was restored when this daemon started.' :
      r.restored + ' of ' + r.total + ' restored (' + r.fromCheckpoint + ' from a checkpoint, ' + r.startedFresh + ' fresh, ' + r.failed.length + ' failed) in ' + r.durationMs + ' ms.';
    // Every supervisor's pending questions, whatever page it is on.
    $('questions').querySelector('tbody').innerHTML = sorted(state.asking).flatMap(function (s) {
      return s.pendingQuestions.map(function (q) {
        return '<tr data-question="' + esc(q.id) + '"><td><a href="#/supervisors/' + esc(s.id) + '">' + esc(s.name) + '</a></td><td>' + esc(q.question) + (q.context ? '<div class="muted">' + esc(q.context) + '</div>' : '') +
          '</td><td>' + answerControls(s.id, q) + '</td><td>' + q.deliveryCount + '</td></tr>';
      });
    }).join('');
  }
  function renderDetail() {
    var d = state.detail;
    if (!d) return;
    var s = state.supervisors.get(d.id) || d.supervisor;
    $('detail-title').innerHTML = esc(s.name) + ' ' + stateBadge(s.state);
    var cards = [
      ['phase', esc(s.phase)], ['progress', bar(s.progress)], ['activity', esc(s.currentActivity || '—')], ['driver', esc(s.driver || 'manual')],
      ['runs on', s.live ? 'this daemon' : esc(s.owner || 'no daemon')], ['step', String(s.step)], ['id', '<span class="mono">' + esc(s.id) + '</span>'],
    ];
    if (s.errorMessage) cards.push(['error', esc(s.errorMessage)]);
    $('detail-cards').innerHTML = cards.map(function (c) { return '<div class="card"><div class="k">' + c[0] + '</div>' + c[1] + '</div>'; }).join('');
    // Interrupted supervisors wait for a person: resume runs the restoration protocol (as "supervisor-runtime resume" does).
    $('detail-actions').innerHTML = s.state === 'interrupted'
      ? '<button type="button" id="resume"' + (state.resuming ? ' disabled' : '') + '>Resume</button><span class="muted">runs the restoration protocol and goes on where it stopped</span>' +
        (state.resumeProblem ? '<span class="problem">' + esc(state.resumeProblem) + '</span>' : '')
      : '';
    $('detail-questions').querySelector('tbody').innerHTML = s.pendingQuestions.length ? s.pendingQuestions.map(function (q) {
      return '<tr data-question="' + esc(q.id) + '"><td>' + esc(q.question) + (q.context ? '<div class="muted">' + esc(q.context) + '</div>' : '') + '</td><td>' + answerControls(s.id, q) +
        '</td><td>' + esc(when(q.askedAt)) + '</td><td>' + q.deliveryCount + '</td></tr>';
    }).join('') : '<tr><td colspan="4" class="muted">No question waits for an answer.</td></tr>';
    $('detail-tasks').querySelector('tbody').innerHTML = d.tasks.length ? d.tasks.map(function (t) {
      var outcome = t.status === 'failed' ? '<span style="color:#b00020">' + esc(t.error) + '</span>' : esc(t.result || '');
      return '<tr data-task="' + esc(t.id) + '"><td>' + esc(t.description) + '<div class="muted mono">' + esc(t.id) + '</div></td><td>' + stateBadge(t.status) + '</td><td>' + bar(t.progress) +
        '</td><td>' + outcome + '</td><td>' + esc(when(t.updatedAt)) + '</td></tr>';
    }).join('') : '<tr><td colspan="5" class="muted">No task spawned yet.</td></tr>';
    var restored = d.checkpoints.filter(function (c) { return c.reason === 'restored'; });
    $('detail-restorations').innerHTML = s.restorationCount === 0 ? '<span class="muted">Never restored.</span>' :
      'Restored ' + s.restorationCount + ' time(s); the last at ' + esc(when(s.lastRestoredAt)) + (s.restorationSource ? ' (' + esc(s.restorationSource) + ')' : '') + '.' +
      (restored.length ? '<ul>' + restored.map(function (c) { return '<li>' + esc(when(c.createdAt)) + ': step ' + c.step + ', back in ' + stateBadge(c.state) + '</li>'; }).join('') + '</ul>' : '');
    $('detail-messages').querySelector('tbody').innerHTML = (d.messages || []).length ? d.messages.map(function (m) {
      return '<tr data-message="' + esc(m.messageId) + '" data-direction="' + esc(m.direction) + '"><td>' + (m.direction === 'sent' ? 'to' : 'from') + '</td><td><a href="#/supervisors/' + esc(m.peerId) + '" class="mono">' + esc(m.peerId) + '</a></td><td>' + esc(m.body) +
        '<div class="muted mono">' + esc(m.messageId) + '</div></td><td>' + esc(when(m.sentAt)) + '</td></tr>';
    }).join('') : '<tr><td colspan="4" class="muted">No message sent or taken in.</td></tr>';
    var link = function (forkId, label) { return '<a href="#/supervisors/' + esc(forkId) + '" class="mono">' + esc(label || forkId) + '</a>'; };
    var lineage = d.lineage || { forkedFrom: null, forks: [] };
    $('detail-forks').innerHTML = (lineage.forkedFrom
      ? '<div data-forked-from="' + esc(lineage.forkedFrom.sourceId) + '">Forked from ' + link(lineage.forkedFrom.sourceId) + ' at checkpoint ' + lineage.forkedFrom.checkpointSeq + ', ' + esc(when(lineage.forkedFrom.createdAt)) + '.</div>'
      : '<div class="muted">Not a fork.</div>') +
      (lineage.forks.length ? '<ul>' + lineage.forks.map(function (f) { return '<li data-fork-of="' + esc(f.supervisorId) + '">' + link(f.supervisorId) + ' from checkpoint ' + f.checkpointSeq + ', ' + esc(when(f.createdAt)) + '</li>'; }).join('') + '</ul>' : '');
    $('detail-timeline').innerHTML = d.checkpoints.map(function (c) {
      // A finished checkpoint cannot be forked (the fork could do nothing): no button.
      var forkable = c.state !== 'completed' && c.state !== 'failed';
      return '<li data-seq="' + c.seq + '">' + stateBadge(c.state) + ' <strong>' + esc(c.reason.replace(/_/g, ' ')) + '</strong> <span class="muted">#' + c.seq + ' · step ' + c.step + ' · ' + esc(when(c.createdAt)) + '</span>' +
        (forkable ? ' <button type="button" data-fork="' + c.seq + '">Fork</button>' : '') + '</li>';
    }).join('') || '<li class="muted">No checkpoint kept.</li>';
    $('conversation-count').textContent = d.conversation.length < s.conversationLength ? '(last ' + d.conversation.length + ' of ' + s.conversationLength + ')' : '(' + d.conversation.length + ')';
    $('detail-conversation').innerHTML = d.conversation.map(function (e) {
      return '<div><span class="role">' + esc(e.role) + '</span>' + esc(e.content) + '</div>';
    }).join('') || '<div class="muted">Empty.</div>';
  }
  function render() {
    if (state.needToken) return;
    keepFocus(function () {
      var route = parseRoute();
      $('list-view').hidden = route.view !== 'list';
      $('detail-view').hidden = route.view !== 'detail';
      if (route.view === 'list') renderList(); else renderDetail();
      renderBadges();
    });
  }

  // ---- data --------------------------------------------------------------------------------------------------
  function parseRoute() {
    var match = /^#\/supervisors\/([^/?#]+)/.exec(location.hash);
    return match ? { view: 'detail', id: decodeURIComponent(match[1]) } : { view: 'list' };
  }
  function pageUrl(after) { return '/supervisors?limit=' + PAGE_SIZE + (after ? '&after=' + encodeURIComponent(after) : ''); }
  function showPage(cursors, list) {
    state.page.cursors = cursors;
    state.page.next = list.next;
    state.page.total = list.total;
    state.supervisors = new Map(list.supervisors.map(function (s) { return [s.id, s]; }));
    state.invalid = list.invalid || [];
  }
  /** Every supervisor with a pending question, every page of them: the questions table is not paged. */
  async function pendingQuestions() {
    var asking = new Map();
    var after = null;
    do {
      var list = await api('/supervisors?pendingQuestions=true&limit=' + Math.max(PAGE_SIZE, 1000) + (after ? '&after=' + encodeURIComponent(after) : ''));
      list.supervisors.forEach(function (s) { asking.set(s.id, s); });
      after = list.next;
    } while (after);
    return asking;
  }
  /** The page shown now, read again (the first page when its cursor is gone), with the questions and restorations. */
  async function refreshList() {
    var cursors = state.page.cursors;
    var all = await Promise.all([api(pageUrl(cursors[cursors.length - 1])), pendingQuestions(), api('/restorations')]);
    var list = all[0];
    if (list.supervisors.length === 0 && list.invalid.length === 0 && cursors.length > 1) { cursors = [null]; list = await api(pageUrl(null)); }
    showPage(cursors, list);
    state.asking = all[1];
    state.restorations = all[2];
  }
  /** Next (+1) or previous (-1) page; an empty page after a full one (nothing older after all) is not shown. */
  async function turnPage(step) {
    var cursors = step > 0 ? state.page.cursors.concat([state.page.next]) : state.page.cursors.slice(0, -1);
    if (state.page.busy || cursors.length === 0 || (step > 0 && !state.page.next)) return;
    state.page.busy = true;
    render();
    try {
      var list = await api(pageUrl(cursors[cursors.length - 1]));
      if (step > 0 && list.supervisors.length === 0 && list.invalid.length === 0) { state.page.next = null; state.page.total = list.total; }
      else showPage(cursors, list);
      $('error').textContent = '';
    } catch (error) { if (error.status !== 401) $('error').textContent = error.message; }
    state.page.busy = false;
    render();
  }
  $('page-next').addEventListener('click', function () { turnPage(1); });
  $('page-prev').addEventListener('click', function () { turnPage(-1); });
  function hasOpenQuestion(s) { return s.pendingQuestions.length > 0 && s.state !== 'completed' && s.state !== 'failed'; }
  /** A supervisor read again: updated where it is shown (its row on this page, its questions). */
  function put(s) {
    if (state.supervisors.has(s.id)) state.supervisors.set(s.id, s);
    if (hasOpenQuestion(s)) state.asking.set(s.id, s); else state.asking.delete(s.id);
  }
  /** True when the supervisor belongs on the page shown but is not on it: a new one while the first page is shown. */
  function belongsHere(s) {
    if (state.supervisors.has(s.id) || state.page.cursors.length > 1) return false;
    var list = sorted(state.supervisors);
    var last = list[list.length - 1];
    return !state.page.next || !last || (s.createdAt || '') >= (last.createdAt || '');
  }
  async function refreshOne(id) {
    try {
      var s = await api('/supervisors/' + encodeURIComponent(id));
      put(s);
      return belongsHere(s);
    } catch (error) {
      if (error.status !== 404) throw error;
      var shown = state.supervisors.delete(id);
      state.asking.delete(id);
      return shown;
    }
  }
  async function refreshDetail() {
    var id = state.detailId;
    if (!id) return;
    var base = '/supervisors/' + encodeURIComponent(id);
    try {
      var supervisor = await api(base);
      var from = Math.max(0, supervisor.conversationLength - 200);
      var parts = await Promise.all([api(base + '/tasks'), api(base + '/checkpoints?limit=100'), api(base + '/conversation?fromSeq=' + from + '&limit=200'), api(base + '/forks?limit=100'), api(base + '/messages?limit=50')]);
      if (state.detailId !== id) return;
      put(supervisor);
      state.detail = { id: id, supervisor: supervisor, tasks: parts[0].tasks, checkpoints: parts[1].checkpoints, conversation: parts[2].entries, lineage: parts[3], messages: parts[4].messages };
      $('detail-error').textContent = '';
    } catch (error) {
      if (error.status === 401) return;
      $('detail-error').textContent = error.message;
    }
  }
  var dirty = new Set();
  var dirtyTimer = null;
  function markDirty(id) {
    dirty.add(id);
    if (dirtyTimer) return;
    dirtyTimer = setTimeout(async function () {
      dirtyTimer = null;
      var ids = Array.from(dirty);
      dirty.clear();
      try {
        // A supervisor that joins or leaves the page shown (a new one on the first page, one removed) reads the page again,
        // so it keeps its size and its count.
        var moved = ids.length > 25 || (await Promise.all(ids.map(refreshOne))).some(Boolean);
        if (moved) await refreshList();
        if (state.detailId && ids.indexOf(state.detailId) >= 0) await refreshDetail();
        $('error').textContent = '';
      } catch (error) { if (error.status !== 401) $('error').textContent = error.message; }
      render();
    }, 150);
  }
  function applyRegistryEntry(entry) {
    state.registry.set(entry.id, entry);
    var known = state.supervisors.get(entry.id);
    if (known) Object.assign(known, { state: entry.state, phase: entry.phase, currentActivity: entry.activity, progress: entry.progress, restorationCount: entry.restorationCount });
    markDirty(entry.id);
  }
  function handleEvent(type, data) {
    if (type === 'snapshot') {
      $('daemon').textContent = 'daemon ' + data.daemonId;
      state.registry = new Map();
      state.warnings = new Map(data.warnings.map(function (w) { return [w.key, w]; }));
      data.supervisors.forEach(function (entry) { state.registry.set(entry.id, entry); });
      refreshList().then(function () { return refreshDetail(); }).then(render, function (error) { if (error.status !== 401) $('error').textContent = error.message; });
    } else if (type === 'changed') {
      data.supervisors.forEach(applyRegistryEntry);
      data.removed.forEach(function (id) { state.registry.delete(id); markDirty(id); });
      render();
    } else if (type === 'warning') {
      if (data.warning) state.warnings.set(data.key, data.warning); else state.warnings.delete(data.key);
      render();
    }
  }
  async function listen() {
    for (;;) {
      if (state.needToken) return;
      var controller = new AbortController();
      state.streamAbort = controller;
      try {
        var response = await fetch('/live', { headers: authHeaders(), signal: controller.signal });
        if (response.status === 401) { askForToken(sessionStorage.getItem(TOKEN_KEY) ? 'That token was refused.' : ''); return; }
        if (!response.ok) throw new Error('/live: HTTP ' + response.status);
        setPill('live', 'ok', 'live');
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buffer += decoder.decode(chunk.value, { stream: true });
          var end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            var block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            var type = /^event: (.*)$/m.exec(block);
            var data = /^data: (.*)$/m.exec(block);
            if (type && data) handleEvent(type[1], JSON.parse(data[1]));
          }
        }
      } catch (error) {
        if (state.needToken) return;
      }
      setPill('live', 'down', 'reconnecting');
      await sleep(1000);
    }
  }

  async function showRoute() {
    var route = parseRoute();
    state.detailId = route.view === 'detail' ? route.id : null;
    if (route.view === 'detail' && (!state.detail || state.detail.id !== route.id)) { state.detail = null; await refreshDetail(); }
    render();
  }
  window.addEventListener('hashchange', function () { showRoute(); });

  var started = false;
  function start() {
    $('login').hidden = true;
    showRoute();
    listen();
    if (!started) {
      started = true;
      refreshHealth();
      setInterval(refreshHealth, 5000);
      // Supervisors of other daemons are not in this daemon's registry: look again now and then.
      setInterval(function () { if (!state.needToken) { refreshList().then(function () { return refreshDetail(); }).then(render, function () {}); } }, 10000);
    }
  }
  start();
})();
</script></body></html>`;
