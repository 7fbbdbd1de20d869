import { createHash } from 'node:crypto';
import { LOG_LEVELS } from '../log.ts';

/**
 * The debug listener's page: one self-contained document (no external
 * assets, no framework). Everything it shows comes from the JSON endpoints
 * and is put in the DOM as text, never as markup.
 */
const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1rem;color:#111;background:#fafafa}
h1{font-size:1.2rem;margin:0 0 .5rem}h2{font-size:1rem;margin:1.2rem 0 .4rem}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.6rem;margin-bottom:.8rem}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eee;white-space:nowrap}
td.reason{white-space:normal}tr.deny td,tr.ask td,tr.fail_closed td{background:#fde8e8}tr.modify td{background:#fff6dd}
pre{background:#f4f4f4;padding:.5rem;overflow:auto;max-height:24rem;font-size:12px}
label{margin-right:.8rem}input[type=text]{width:28rem}textarea{width:100%;height:6rem;font-family:monospace}
#stream-state{font-size:12px;color:#666}
`;

/** What the dry-run form starts with in each mode (the path and text follow the mode until edited). */
const DRY_RUN_SAMPLES = {
  request: { path: '/llm/openai/v1/chat/completions', body: '{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}' },
  response: {
    path: '/llm/openai/v1/chat/completions',
    body: JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'run_shell', arguments: '{"command":"ls"}' } }] }, finish_reason: 'tool_calls' }] }),
  },
  response_stream: {
    path: '/llm/anthropic/v1/messages',
    body: [
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"run_shell","input":{}}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"command\\":\\"ls\\"}"}}\n\n',
      'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ].join(''),
  },
};

const SCRIPT = `
'use strict';
const COLUMNS = ['time','method','path','status','decision','policy_id','reason','source','response_decision','response_policy_id','provider','code','duration_ms','bytes_in','bytes_out'];
const MAX_ROWS = 500;
const $ = (id) => document.getElementById(id);
const seen = new Set();
function keyOf(r) { return [r.time, r.method, r.path, r.status, r.duration_ms, r.bytes_out].join('|'); }
function addRow(r, top) {
  const key = keyOf(r);
  if (seen.has(key)) return;
  seen.add(key);
  const tr = document.createElement('tr');
  if (r.decision) tr.className = r.decision;
  for (const c of COLUMNS) {
    const td = document.createElement('td');
    td.className = c;
    td.textContent = r[c] === undefined || r[c] === null ? '' : String(r[c]);
    tr.appendChild(td);
  }
  const rows = $('rows');
  if (top) rows.prepend(tr); else rows.append(tr);
  while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
}
async function json(url, init) {
  const res = await fetch(url, init);
  const body = await res.json();
  return { status: res.status, body };
}
function show(id, value) { $(id).textContent = JSON.stringify(value, null, 2); }
async function loadHistory() {
  const { body } = await json('/debug/requests');
  for (const r of body.requests) addRow(r, false);
}
async function loadConfig() {
  const { body } = await json('/debug/config');
  show('config', body);
  $('level-state').textContent = body.log.level + (body.log.revert_at ? ' until ' + body.log.revert_at : ' (configured)');
  $('level').value = body.log.level;
}
function openStream() {
  const es = new EventSource('/debug/requests/stream');
  es.onopen = () => { $('stream-state').textContent = 'live'; loadHistory(); };
  es.onerror = () => { $('stream-state').textContent = 'disconnected; retrying'; };
  es.onmessage = (e) => addRow(JSON.parse(e.data), true);
}
const SAMPLES = ${JSON.stringify(DRY_RUN_SAMPLES)};
$('dry-mode').addEventListener('change', () => {
  const mode = $('dry-mode').value;
  // A sample the user has not edited follows the mode; edited text stays.
  if (Object.values(SAMPLES).some((s) => s.body === $('dry-body').value)) $('dry-body').value = SAMPLES[mode].body;
  if (Object.values(SAMPLES).some((s) => s.path === $('dry-path').value)) $('dry-path').value = SAMPLES[mode].path;
});
$('dry-run').addEventListener('submit', async (e) => {
  e.preventDefault();
  const mode = $('dry-mode').value;
  const text = $('dry-body').value.trim();
  const payload = { path: $('dry-path').value };
  if ($('dry-remote').checked) payload.remote = true;
  if (mode === 'response_stream') {
    payload.response_stream = $('dry-body').value;
  } else {
    try {
      if (text) payload[mode === 'response' ? 'response' : 'body'] = JSON.parse(text);
    } catch (err) {
      $('dry-decision').textContent = 'not JSON: ' + err.message;
      return;
    }
  }
  const { status, body } = await json('/debug/evaluate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  $('dry-decision').textContent = status === 200 ? body.decision : 'error ' + status + ': ' + (body.error ? body.error.message : '');
  show('dry-result', body);
});
$('level-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const { status, body } = await json('/debug/log-level', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: $('level').value, ttl_seconds: Number($('ttl').value) }) });
  $('level-state').textContent = status === 200 ? body.level + (body.revert_at ? ' until ' + body.revert_at : ' (configured)') : 'error: ' + body.error.message;
});
$('reload-config').addEventListener('click', () => loadConfig());
openStream();
loadConfig();
`;

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const levelOptions = LOG_LEVELS.map((l) => `<option value="${l}">${l}</option>`).join('');

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>firstops-sidecar debug</title><style>${STYLE}</style></head>
<body>
<h1>firstops-sidecar debug</h1>
<section><h2>Requests <span id="stream-state">connecting</span></h2>
<table><thead><tr><th>time</th><th>method</th><th>path</th><th>status</th><th>decision</th><th>policy</th><th>reason</th><th>source</th><th>response</th><th>response policy</th><th>provider</th><th>code</th><th>ms</th><th>in</th><th>out</th></tr></thead>
<tbody id="rows"></tbody></table></section>
<section><h2>Dry run</h2>
<form id="dry-run">
<label>judge <select id="dry-mode"><option value="request">a request body (JSON)</option><option value="response">an upstream answer (JSON)</option><option value="response_stream">an upstream stream (SSE events)</option></select></label>
<label>path <input type="text" id="dry-path" value="${DRY_RUN_SAMPLES.request.path}"></label>
<label><input type="checkbox" id="dry-remote"> ask the gateway too (requests only)</label>
<textarea id="dry-body" aria-label="request body, answer (JSON) or stream (SSE)">${escapeHtml(DRY_RUN_SAMPLES.request.body)}</textarea>
<button type="submit" id="dry-submit">Evaluate</button> decision: <strong id="dry-decision"></strong>
</form><pre id="dry-result"></pre></section>
<section><h2>Log level</h2>
<form id="level-form"><select id="level" aria-label="level">${levelOptions}</select>
<label>for <input type="number" id="ttl" value="600" min="1" max="86400"> s</label>
<button type="submit">Set</button> now: <span id="level-state"></span></form></section>
<section><h2>Configuration <button type="button" id="reload-config">refresh</button></h2><pre id="config"></pre></section>
<script>${SCRIPT}</script>
</body></html>
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Only this document's own inline script and style run; it may fetch from its own origin and nothing else. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
