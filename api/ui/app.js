// embedd dashboard: the jobs of one API key, live.
//
// The key the user pastes stays in sessionStorage (this tab only) and goes
// to this server as "Authorization: Bearer", never in a URL. The job list is
// read every few seconds (new jobs appear by themselves); the running jobs
// on screen, and the job opened, follow their event streams
// (GET /v1/jobs/{id}/events), read with fetch() because EventSource cannot
// send an Authorization header. A browser gives a server 6 connections, so
// at most MAX_STREAMS streams are open at once; the other jobs move with the
// list. Everything is built with the DOM API (textContent), never from HTML.
'use strict';

const KEY_ITEM = 'embedd.key';
const LIST_EVERY_MS = 3000;
const MAX_STREAMS = 3;
const TERMINAL = new Set(['succeeded', 'completed_with_errors', 'failed', 'cancelled']);

const state = {
  key: sessionStorage.getItem(KEY_ITEM) || '',
  jobs: new Map(), // id -> job representation
  order: [], // ids, newest first
  streams: new Map(), // id -> {abort, lastId, connected}
  listTimer: null,
  listBusy: false,
  openId: null, // the job shown in the detail view
  armed: null, // {id, timer}: cancel clicked once
  cancelling: null, // the id of a cancel under way
  batchesAt: 0,
  batchesTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'tabindex') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- formatting ----

const intFmt = new Intl.NumberFormat();
const n = (v) => intFmt.format(v || 0);

function usd(v) {
  v = Number(v) || 0;
  const d = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 1 ? 2 : 4;
  return '$' + v.toFixed(d);
}

function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + ' s';
  const m = Math.round(s / 60);
  if (m < 60) return m + ' min';
  const h = Math.floor(m / 60);
  return h + ' h ' + (m % 60) + ' min';
}

function when(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString();
}

function etaText(job) {
  const e = job.eta;
  if (!e || typeof e !== 'object' || typeof e.seconds !== 'number') return null;
  let t = '≈ ' + duration(e.seconds);
  if (e.at) {
    const d = new Date(e.at);
    if (!isNaN(d)) t += ' (' + d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + ')';
  }
  return t;
}

function etaBasis(job) {
  const b = job.eta && job.eta.basis;
  if (!b) return null;
  if (typeof b === 'string') return b;
  if (typeof b === 'object') return b.kind || b.source || b.method || JSON.stringify(b);
  return String(b);
}

function counts(job) {
  const c = (job.stats && job.stats.chunks) || {};
  return {
    total: c.total || 0, ok: c.succeeded || 0, fail: c.failed || 0,
    flight: c.in_flight || 0, pend: c.pending || 0, reused: c.reused || 0,
  };
}

function saved(job) {
  const c = job.cost || {};
  return (Number(c.saved_by_batch) || 0) + (Number(c.saved_by_reuse) || 0);
}

function tokens(job) {
  const t = (job.cost && job.cost.tokens) || {};
  return (t.batch || 0) + (t.interactive || 0);
}

// ---- the API ----

class HttpError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || 'HTTP ' + status);
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const r = await fetch(path, {
    ...opts,
    headers: { Authorization: 'Bearer ' + state.key, Accept: 'application/json', ...(opts.headers || {}) },
    cache: 'no-store',
  });
  if (r.status === 401) {
    signOut('The server did not accept this key.');
    throw new HttpError(401);
  }
  const text = await r.text();
  const body = text ? JSON.parse(text) : null;
  if (!r.ok) throw new HttpError(r.status, body);
  return body;
}

// ---- the progress bar (succeeded / failed / in flight / pending) ----

function bar(job) {
  const c = counts(job);
  const pct = (v) => (c.total ? (100 * v) / c.total : 0);
  const done = c.total ? Math.round(pct(c.ok + c.fail) * 10) / 10 : 0;
  const b = el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-valuenow': String(done), 'aria-label': 'progress' });
  for (const [cls, v] of [['ok', c.ok], ['fail', c.fail], ['flight', c.flight], ['pend', c.pend]]) {
    const s = el('span', { class: cls, title: cls });
    s.style.width = pct(v) + '%'; // CSSOM, which the CSP allows (no style attribute)
    b.append(s);
  }
  return b;
}

function figures(job) {
  const c = counts(job);
  const f = el('div', { class: 'figures' });
  const item = (label, value) => f.append(el('span', {}, label + ' ', el('b', { text: value })));
  item('chunks', n(c.ok + c.fail) + ' / ' + n(c.total));
  item('', (c.total ? ((100 * (c.ok + c.fail)) / c.total).toFixed(1) : '0.0') + '%');
  if (c.fail) item('failed', n(c.fail));
  if (c.flight) item('in flight', n(c.flight));
  const eta = etaText(job);
  if (eta && !TERMINAL.has(job.state)) item('ETA', eta);
  item('tokens', n(tokens(job)));
  item('saved', usd(saved(job)));
  return f;
}

function stateBadge(job) {
  return el('span', { class: 'state ' + job.state, text: job.state.replace(/_/g, ' ') });
}

// ---- the list ----

function jobItem(job) {
  const li = el('li', { class: 'job', tabindex: '0', 'data-id': job.id, 'data-state': job.state });
  li.append(
    el('div', { class: 'job-head' },
      el('span', { class: 'job-name', text: job.display_name || 'job' }),
      el('span', { class: 'job-id', text: job.id }),
      stateBadge(job)),
    bar(job),
    figures(job));
  li.addEventListener('click', () => { location.hash = '#/jobs/' + job.id; });
  li.addEventListener('keydown', (e) => { if (e.key === 'Enter') location.hash = '#/jobs/' + job.id; });
  return li;
}

function renderTotals() {
  const jobs = state.order.map((id) => state.jobs.get(id)).filter(Boolean);
  const active = jobs.filter((j) => !TERMINAL.has(j.state)).length;
  let toks = 0, sav = 0, paid = 0;
  for (const j of jobs) {
    toks += tokens(j);
    sav += saved(j);
    paid += Number(j.cost && j.cost.batch) || 0;
  }
  const t = $('totals');
  t.replaceChildren();
  const item = (label, v) => t.append(el('span', {}, label + ' ', el('b', { text: v })));
  item('jobs', n(jobs.length));
  item('active', n(active));
  item('tokens', n(toks));
  item('paid', usd(paid));
  item('saved', usd(sav));
  t.append(el('span', { class: 'legend' },
    el('i', { class: 'ok' }), 'succeeded ', el('i', { class: 'fail' }), 'failed ',
    el('i', { class: 'flight' }), 'in flight ', el('i', { class: 'pend' }), 'pending'));
}

function renderList() {
  const ul = $('jobs');
  const seen = new Set();
  let prev = null;
  for (const id of state.order) {
    const job = state.jobs.get(id);
    if (!job) continue;
    seen.add(id);
    const fresh = jobItem(job);
    const old = ul.querySelector(`li[data-id="${id}"]`);
    if (old) old.replaceWith(fresh);
    else if (prev) prev.after(fresh);
    else ul.prepend(fresh);
    prev = fresh;
  }
  for (const li of [...ul.children]) if (!seen.has(li.dataset.id)) li.remove();
  $('empty').hidden = state.order.length > 0;
  renderTotals();
}

function updateJob(job) {
  const had = state.jobs.get(job.id);
  state.jobs.set(job.id, job);
  if (!had && !state.order.includes(job.id)) state.order.unshift(job.id);
  if (!$('list').hidden) {
    const old = $('jobs').querySelector(`li[data-id="${job.id}"]`);
    if (old) old.replaceWith(jobItem(job));
    else renderList();
    renderTotals();
  }
  if (state.openId === job.id) {
    renderDetail(job);
    refreshBatchesSoon();
  }
}

async function refreshList() {
  if (state.listBusy || !state.key) return;
  state.listBusy = true;
  try {
    const page = await api('/v1/jobs?limit=50');
    state.order = page.jobs.map((j) => j.id);
    for (const j of page.jobs) {
      const cur = state.jobs.get(j.id);
      // an event may be newer than the list: keep the newer of the two
      if (cur && ((TERMINAL.has(cur.state) && !TERMINAL.has(j.state)) ||
                  (cur.last_activity_at || '') > (j.last_activity_at || ''))) continue;
      state.jobs.set(j.id, j);
      if (j.id === state.openId && JSON.stringify(cur) !== JSON.stringify(j)) {
        renderDetail(j);
        refreshBatchesSoon();
      }
    }
    $('list-error').hidden = true;
    if (!$('list').hidden) renderList();
    syncStreams();
  } catch (e) {
    if (e.status !== 401) {
      $('list-error').textContent = 'Could not read the jobs: ' + e.message + '. Retrying.';
      $('list-error').hidden = false;
    }
  } finally {
    state.listBusy = false;
  }
}

function scheduleList() {
  clearTimeout(state.listTimer);
  if (!state.key) return;
  state.listTimer = setTimeout(async () => {
    await refreshList();
    scheduleList();
  }, LIST_EVERY_MS);
}

// ---- event streams (fetch + a text/event-stream parser) ----

function wantedStreams() {
  const want = [];
  const open = state.openId && state.jobs.get(state.openId);
  if (open && !TERMINAL.has(open.state)) want.push(open.id);
  if (!$('list').hidden) {
    for (const id of state.order) {
      const j = state.jobs.get(id);
      if (want.length >= MAX_STREAMS) break;
      if (j && !TERMINAL.has(j.state) && !want.includes(id)) want.push(id);
    }
  }
  return want;
}

function syncStreams() {
  const want = new Set(wantedStreams());
  for (const [id, s] of state.streams) if (!want.has(id)) { s.stopped = true; s.abort.abort(); state.streams.delete(id); }
  for (const id of want) if (!state.streams.has(id)) openStream(id);
  showLive();
}

function showLive() {
  const live = $('live');
  const on = [...state.streams.values()].filter((s) => s.connected).length;
  live.hidden = !state.key;
  live.classList.toggle('on', on > 0);
  live.textContent = on ? `live (${on} stream${on > 1 ? 's' : ''})` : 'updating every ' + LIST_EVERY_MS / 1000 + ' s';
}

function openStream(id) {
  const s = { abort: new AbortController(), lastId: null, connected: false, stopped: false, delay: 1000 };
  state.streams.set(id, s);
  runStream(id, s);
}

async function runStream(id, s) {
  while (!s.stopped) {
    let finished = false;
    try {
      const headers = { Authorization: 'Bearer ' + state.key, Accept: 'text/event-stream' };
      if (s.lastId) headers['Last-Event-ID'] = s.lastId;
      const r = await fetch(`/v1/jobs/${id}/events`, { headers, signal: s.abort.signal, cache: 'no-store' });
      if (r.status === 401) { signOut('The server did not accept this key.'); return; }
      if (r.status === 404) { finished = true; break; }
      if (!r.ok || !r.body) throw new HttpError(r.status);
      s.connected = true;
      s.delay = 1000;
      showLive();
      finished = await readEvents(r.body, (ev) => {
        if (ev.id) s.lastId = ev.id;
        if (ev.event !== 'progress' && ev.event !== 'done') return;
        updateJob(JSON.parse(ev.data));
      });
    } catch (e) {
      if (s.stopped) return;
    }
    s.connected = false;
    showLive();
    if (finished) break;
    // the server went away (restart, another replica): resume where we were
    await new Promise((res) => setTimeout(res, s.delay));
    s.delay = Math.min(s.delay * 2, 15000);
  }
  if (state.streams.get(id) === s) state.streams.delete(id);
  showLive();
  syncStreams();
}

// Read a text/event-stream body; onEvent gets {event, data, id}. Resolves
// true once a "done" event arrived (the server then ends the body).
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { event: 'message', data: [], id: null };
  let done = false;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) return done;
    buf += value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        if (ev.data.length) {
          const e = { event: ev.event, data: ev.data.join('\n'), id: ev.id };
          if (e.event === 'done') done = true;
          onEvent(e);
        }
        ev = { event: 'message', data: [], id: ev.id };
        continue;
      }
      if (line.startsWith(':')) continue; // a heartbeat
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'event') ev.event = val;
      else if (field === 'data') ev.data.push(val);
      else if (field === 'id') ev.id = val;
    }
  }
}

// ---- the detail view ----

function renderDetail(job) {
  const box = $('job');
  const c = counts(job);
  const cost = job.cost || {};
  const s = job.settings || {};
  const st = job.stats || {};
  const grid = el('dl', { class: 'grid' });
  const item = (k, v) => grid.append(el('div', {}, el('dt', { text: k }), el('dd', { text: v })));
  item('Documents', n(st.documents));
  item('Chunks', n(c.total));
  item('Succeeded', n(c.ok));
  item('Failed', n(c.fail));
  item('In flight', n(c.flight));
  item('Pending', n(c.pend));
  item('Reused', n(c.reused));
  item('Success rate', typeof st.success_rate === 'number' ? (100 * st.success_rate).toFixed(2) + '%' : '–');
  const eta = etaText(job);
  item('ETA', TERMINAL.has(job.state) ? '–' : eta || 'not yet known');
  if (eta && etaBasis(job)) item('ETA basis', etaBasis(job));
  item('Tokens', n(tokens(job)));
  item('Paid (batch)', usd(cost.batch));
  item('Interactive price', usd(cost.interactive_equivalent));
  item('Saved by batch', usd(cost.saved_by_batch));
  item('Saved by reuse', usd(cost.saved_by_reuse));
  item('Model', s.model || '–');
  item('Task', s.task_type || '–');
  item('Dimensions', String(s.output_dimensionality || '–'));
  item('Google batches', n(st.google && st.google.batches_created));
  item('Created', when(job.created_at));
  item('Started', when(job.started_at));
  item('Finished', when(job.finished_at));
  item('Last activity', when(job.last_activity_at));

  const actions = el('div', { class: 'actions' });
  if (!TERMINAL.has(job.state)) actions.append(cancelButton(job));
  else actions.append(el('span', { class: 'hint', text: 'Results: GET /v1/jobs/' + job.id + '/results' }));

  box.replaceChildren(
    el('div', { class: 'detail-head' },
      el('h1', { text: job.display_name || 'job' }), stateBadge(job)),
    el('div', { class: 'job-id', text: job.id }),
    bar(job),
    figures(job),
    grid,
    actions);
  box.dataset.id = job.id;
  box.dataset.state = job.state;
}

// Cancel takes two clicks instead of a dialog. Its state lives outside the
// button, which is rebuilt with every event of the job.
function cancelButton(job) {
  const armed = state.armed && state.armed.id === job.id;
  const busy = state.cancelling === job.id;
  const b = el('button', { type: 'button', class: 'danger' + (armed ? ' armed' : ''), id: 'cancel',
    text: busy ? 'Cancelling…' : armed ? 'Confirm cancel' : 'Cancel job' });
  b.disabled = busy;
  b.addEventListener('click', async () => {
    if (!(state.armed && state.armed.id === job.id)) {
      const timer = setTimeout(() => { state.armed = null; rerenderOpen(); }, 5000);
      state.armed = { id: job.id, timer };
      rerenderOpen();
      return;
    }
    clearTimeout(state.armed.timer);
    state.armed = null;
    state.cancelling = job.id;
    rerenderOpen();
    try {
      const j = await api(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
      state.cancelling = null;
      updateJob(j);
    } catch (e) {
      state.cancelling = null;
      rerenderOpen();
      if (e.status !== 401) $('cancel')?.after(el('span', { class: 'error', text: ' ' + e.message }));
    }
  });
  return b;
}

function rerenderOpen() {
  const j = state.openId && state.jobs.get(state.openId);
  if (j) renderDetail(j);
}

function refreshBatchesSoon() {
  if (state.batchesTimer) return;
  const wait = Math.max(0, state.batchesAt + 2000 - Date.now());
  state.batchesTimer = setTimeout(() => { state.batchesTimer = null; loadBatches(); }, wait);
}

async function loadBatches() {
  const id = state.openId;
  if (!id) return;
  state.batchesAt = Date.now();
  try {
    const page = await api(`/v1/jobs/${id}/batches?limit=200`);
    if (state.openId !== id) return;
    const tb = $('batches').tBodies[0];
    tb.replaceChildren(...page.batches.map((b) => el('tr', { 'data-state': b.state },
      el('td', { text: b.id }),
      el('td', { text: b.state }),
      el('td', { text: b.transport || '–' }),
      el('td', { class: 'num', text: n(b.chunks) }),
      el('td', { class: 'num', text: n(b.polls) }),
      el('td', { text: when(b.created_at) }),
      el('td', { text: when(b.finished_at) }),
      el('td', { text: b.gemini_state || b.gemini_name || (b.error ? 'error: ' + b.error : '–') }))));
    const note = $('batches-note');
    note.hidden = page.batches.length > 0 && !page.next_cursor;
    note.textContent = page.batches.length === 0 ? 'No batch yet: the job waits for a worker, or went through the interactive API.'
      : 'The first ' + page.batches.length + ' batches.';
  } catch (e) {
    if (e.status !== 401) {
      $('batches-note').textContent = 'Could not read the batches: ' + e.message;
      $('batches-note').hidden = false;
    }
  }
}

async function openJob(id) {
  state.openId = id;
  $('batches').tBodies[0].replaceChildren();
  $('job').replaceChildren(el('p', { class: 'hint', text: 'Loading…' }));
  const cached = state.jobs.get(id);
  if (cached) renderDetail(cached);
  try {
    updateJob(await api(`/v1/jobs/${id}`));
  } catch (e) {
    if (e.status !== 401) $('job').replaceChildren(el('p', { class: 'error', text: e.message }));
    return;
  }
  loadBatches();
  syncStreams();
}

// ---- views and the key ----

function route() {
  const m = /^#\/jobs\/([0-9a-f-]{36})$/.exec(location.hash);
  $('login').hidden = !!state.key;
  $('forget').hidden = !state.key;
  if (!state.key) {
    $('list').hidden = $('detail').hidden = true;
    showLive();
    return;
  }
  $('list').hidden = !!m;
  $('detail').hidden = !m;
  if (m) {
    openJob(m[1]);
  } else {
    state.openId = null;
    renderList();
    refreshList();
  }
  syncStreams();
}

function signOut(message) {
  state.key = '';
  sessionStorage.removeItem(KEY_ITEM);
  for (const s of state.streams.values()) { s.stopped = true; s.abort.abort(); }
  state.streams.clear();
  state.jobs.clear();
  state.order = [];
  clearTimeout(state.listTimer);
  $('jobs').replaceChildren();
  $('login-error').textContent = message || '';
  $('login-error').hidden = !message;
  route();
}

function start() {
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const k = $('key').value.trim();
    if (!k) return;
    state.key = k;
    sessionStorage.setItem(KEY_ITEM, k);
    $('key').value = '';
    $('login-error').hidden = true;
    route();
    scheduleList();
  });
  $('forget').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', route);
  route();
  scheduleList();
}

start();
