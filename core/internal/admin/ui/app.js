// The ringside call log page: recent calls arriving live, filters, a
// call's timeline, the callee's devices, and explain.
//
// Rules it keeps: the admin token lives in sessionStorage only and travels
// in the Authorization header, never in a URL; every value from the server
// is written with textContent, never parsed as HTML; device tokens are
// shown shortened.
'use strict';

(() => {
  const TOKEN_KEY = 'ringside.adminToken';
  const LIST_LIMIT = 100;
  const MAX_BACKOFF = 30000;

  const $ = (sel) => document.querySelector(sel);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  // The rows shown, by sid: the summary, the statuses of its callbacks
  // seen so far, and the row.
  const shown = new Map();
  let current = ''; // the sid whose timeline is open
  let refreshTimer = 0;
  let streamCtl = null; // aborts the live stream
  let listing = null; // the list request in flight
  let buffered = []; // live events that arrived while listing

  class Unauthorized extends Error {}

  // ---------------------------------------------------------------------
  // Requests.

  function authHeaders() {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  // api GETs path (a /v1 path) and returns its JSON; a 401 asks for the
  // token; any other error throws with the server's message.
  async function api(path, signal) {
    const res = await fetch(path, { headers: authHeaders(), cache: 'no-store', signal });
    if (res.status === 401) {
      needToken();
      throw new Unauthorized('the admin token is missing or wrong');
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: the status says it
    }
    if (!res.ok) {
      const msg = body && body.message ? body.message : res.status + ' ' + res.statusText;
      const err = new Error(body && body.field ? body.field + ': ' + msg : msg);
      err.body = body;
      throw err;
    }
    return body;
  }

  function showError(err) {
    const p = $('#error');
    if (!err || err instanceof Unauthorized || err.name === 'AbortError') {
      p.hidden = true;
      return;
    }
    p.textContent = String(err.message || err);
    p.hidden = false;
  }

  // ---------------------------------------------------------------------
  // The token.

  function needToken() {
    stopStream();
    setLive('closed', 'Live updates: off (the admin token is needed)');
    const auth = $('#auth');
    if (auth.hidden) {
      auth.hidden = false;
      $('#token').focus();
    }
  }

  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('#token');
    token = input.value.trim();
    input.value = '';
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#auth').hidden = true;
    $('#forget').hidden = false;
    start();
  });

  $('#forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = '';
    $('#forget').hidden = true;
    stopStream();
    clearCalls();
    closeDetails();
    start();
  });

  // ---------------------------------------------------------------------
  // Small DOM helpers: text only.

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c instanceof Node) td.append(c);
      else td.textContent = c === undefined || c === null ? '' : String(c);
      tr.append(td);
    }
    return tr;
  }

  // fillTable puts rows in the table's body, or one row saying none.
  function fillTable(sel, rows) {
    if (!rows.length) {
      const td = el('td', 'none', { class: 'none', colspan: String($(sel + ' thead tr').cells.length) });
      rows = [wrap('tr', td)];
    }
    $(sel + ' tbody').replaceChildren(...rows);
  }

  function fillList(sel, pairs) {
    const dl = $(sel);
    dl.replaceChildren();
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === '') continue;
      dl.append(el('dt', k), v instanceof Node ? wrap('dd', v) : el('dd', v));
    }
  }

  function wrap(tag, child) {
    const e = document.createElement(tag);
    e.append(child);
    return e;
  }

  function time(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function dateTime(s) {
    const d = new Date(s);
    return !s || isNaN(d) ? s || '' : d.toLocaleString(undefined, { hour12: false });
  }

  function party(p) {
    return p ? p.user_id + ' @ ' + p.service_id : '';
  }

  function device(d) {
    return d ? d.kind + ' ' + d.token : '';
  }

  function ms(v) {
    return v ? (v >= 1000 ? (v / 1000).toFixed(1) + ' s' : Math.round(v * 10) / 10 + ' ms') : '';
  }

  // shortToken shortens a whole device token as the server does: a phone
  // number keeps its first 3 and last 2 characters; a Web Push
  // subscription (its canonical JSON) shows as "webpush:", its endpoint's
  // host and the last 4 characters of its auth secret, never the
  // endpoint's path; any other token a prefix and a suffix, together at
  // most a third of its bytes (at most 6 first and 4 last), cut at
  // character boundaries.
  function shortToken(t) {
    if (/^\+[0-9]{8,}$/.test(t)) return t.slice(0, 3) + '…' + t.slice(-2);
    const wp = /^\{"endpoint":"https:\/\/([A-Za-z0-9.:[\]-]{1,255})(?=[/?"])[\s\S]*","auth":"([A-Za-z0-9_-]{22})"\}\}$/.exec(t);
    if (wp) return 'webpush:' + wp[1] + '…' + wp[2].slice(-4);
    const b = new TextEncoder().encode(t);
    const shownBytes = Math.floor(b.length / 3);
    const s = Math.min(4, Math.floor(shownBytes / 3));
    let p = Math.min(6, shownBytes - s);
    const cont = (i) => i < b.length && (b[i] & 0xc0) === 0x80;
    while (p > 0 && cont(p)) p--;
    let i = b.length - s;
    while (i < b.length && cont(i)) i++;
    const dec = new TextDecoder();
    return dec.decode(b.slice(0, p)) + '…' + dec.decode(b.slice(i));
  }

  // ---------------------------------------------------------------------
  // The list of calls.

  function filters() {
    const f = {};
    for (const [k, v] of new FormData($('#filters'))) {
      if (String(v).trim()) f[k] = String(v).trim();
    }
    return f;
  }

  // matches applies the filters to a summary as the server does, with
  // the statuses of its callbacks seen so far.
  function matches(s, statuses) {
    const f = filters();
    return (!f.status || s.status === f.status || statuses.has(f.status)) &&
      (!f.outcome || s.outcome === f.outcome) &&
      (!f.callee || s.callee.user_id === f.callee) &&
      (!f.caller || s.caller.user_id === f.caller) &&
      (!f.route || (s.routes || []).includes(f.route)) &&
      (!f.notifier || (s.notifiers || []).includes(f.notifier));
  }

  function callRow(s) {
    const link = el('a', s.sid, { href: '#call=' + encodeURIComponent(s.sid) });
    const outcome = el('span', s.outcome, { class: 'outcome outcome-' + s.outcome });
    const tr = row([time(s.received), link, party(s.caller), party(s.callee), s.type, s.status, outcome,
      (s.routes || []).join(', '), (s.notifiers || []).join(', ')]);
    tr.dataset.sid = s.sid;
    tr.dataset.outcome = s.outcome;
    if (s.sid === current) tr.classList.add('selected');
    tr.addEventListener('click', (ev) => {
      const href = link.getAttribute('href');
      if (location.hash === href) {
        ev.preventDefault();
        route(); // open again, e.g. after the devices
      } else if (!ev.target.closest('a')) {
        location.hash = href;
      }
    });
    return tr;
  }

  function clearCalls() {
    shown.clear();
    $('#calls tbody').replaceChildren();
    $('#no-calls').hidden = false;
  }

  // upsert shows a summary from the live stream: it updates its row, adds
  // a new call at the top, or removes a row the filters no longer select.
  function upsert(s, ev) {
    const old = shown.get(s.sid);
    const statuses = old ? old.statuses : new Set();
    statuses.add(s.status);
    if (ev.type === 'callback' && ev.status) statuses.add(ev.status);
    if (!matches(s, statuses)) {
      if (old) {
        old.tr.remove();
        shown.delete(s.sid);
      }
      return;
    }
    const tr = callRow(s);
    if (old) {
      old.tr.replaceWith(tr);
    } else {
      $('#calls tbody').prepend(tr);
      const rows = $('#calls tbody').rows;
      while (rows.length > LIST_LIMIT) {
        const last = rows[rows.length - 1];
        shown.delete(last.dataset.sid);
        last.remove();
      }
    }
    shown.set(s.sid, { summary: s, statuses, tr });
    $('#no-calls').hidden = true;
  }

  // list asks the server for the calls the filters select; live events
  // arriving meanwhile are applied after it.
  async function list() {
    const q = new URLSearchParams(filters());
    q.set('limit', String(LIST_LIMIT));
    const req = api('/v1/calls?' + q);
    listing = req;
    try {
      const body = await req;
      if (listing !== req) return; // a newer list replaced this one
      clearCalls();
      const tbody = $('#calls tbody');
      for (const s of body.calls || []) {
        const tr = callRow(s);
        tbody.append(tr);
        shown.set(s.sid, { summary: s, statuses: new Set([s.status]), tr });
      }
      $('#no-calls').hidden = shown.size > 0;
      showError(null);
    } finally {
      if (listing === req) {
        listing = null;
        const evs = buffered;
        buffered = [];
        evs.forEach(onEvent);
      }
    }
  }

  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    list().catch(showError);
  });
  $('#filters').addEventListener('reset', () => {
    setTimeout(() => list().catch(showError)); // after the form is cleared
  });

  // ---------------------------------------------------------------------
  // The live stream: Server-Sent Events read with fetch, so that the
  // token goes in a header (EventSource cannot send one).

  function setLive(state, text) {
    const p = $('#live');
    p.dataset.state = state;
    p.textContent = text;
  }

  function stopStream() {
    if (streamCtl) streamCtl.abort();
    streamCtl = null;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }

  // stream reads the live stream until it is stopped, reconnecting with
  // a jittered exponential backoff; each (re)connection re-lists the
  // calls, so nothing missed while disconnected is left out.
  async function stream() {
    stopStream();
    const ctl = new AbortController();
    streamCtl = ctl;
    let backoff = 1000;
    while (!ctl.signal.aborted) {
      try {
        setLive('connecting', 'Live updates: connecting…');
        const res = await fetch('/v1/calls/stream', { headers: authHeaders(), cache: 'no-store', signal: ctl.signal });
        if (res.status === 401) {
          needToken();
          return;
        }
        if (!res.ok || !res.body) {
          let msg = String(res.status);
          try {
            msg = (await res.json()).message || msg;
          } catch {
            // not JSON: the status says it
          }
          throw new Error('live updates: ' + msg);
        }
        await list();
        setLive('open', 'Live updates: on');
        backoff = 1000;
        await readEvents(res.body);
      } catch (err) {
        if (ctl.signal.aborted || err instanceof Unauthorized) return;
        showError(err);
      }
      const wait = backoff / 2 + Math.random() * backoff / 2;
      setLive('retrying', 'Live updates: reconnecting in ' + Math.round(wait / 1000) + ' s');
      await sleep(wait, ctl.signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF);
    }
  }

  // readEvents parses the text/event-stream body and dispatches each
  // event; it returns when the stream ends.
  async function readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let type = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length) dispatch(type || 'message', data.join('\n'));
          type = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: keep-alive
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let val = i < 0 ? '' : line.slice(i + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') type = val;
        else if (field === 'data') data.push(val);
      }
    }
  }

  function dispatch(type, data) {
    let e;
    try {
      e = JSON.parse(data);
    } catch {
      return;
    }
    if (type === 'dropped') {
      // Events were lost for this page: ask for the whole list again.
      list().catch(showError);
      if (current) refreshCall();
      return;
    }
    onEvent(e);
  }

  function onEvent(e) {
    if (listing) {
      buffered.push(e);
      return;
    }
    if (e.call) upsert(e.call, e);
    if (e.sid === current) refreshCall();
  }

  // ---------------------------------------------------------------------
  // One call.

  function refreshCall() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => showCall(current, false).catch(showError), 150);
  }

  // The call's and explain's notifier tables share one header; the rows
  // below fill its columns.
  for (const sel of ['#call-notifiers', '#explain-notifiers']) {
    $(sel + ' tbody').before($('#notifier-head').content.cloneNode(true));
  }

  function notifierRows(ns) {
    return (ns || []).map((n) => row([n.name, n.plugin, n.route, n.role, n.device_kind, n.devices,
      n.active ? 'yes' : 'no', n.reason]));
  }

  async function showCall(sid, focus) {
    const r = await api('/v1/calls/' + encodeURIComponent(sid));
    if (sid !== current) return;
    $('#call-title').textContent = 'Call ' + r.sid;
    fillList('#call-summary', [
      ['Received', time(r.received)], ['Finished', time(r.finished)],
      ['Caller', party(r.caller)], ['Callee', party(r.callee)], ['Type', r.type],
      ['Status', r.status], ['Outcome', r.outcome], ['Routes', (r.routes || []).join(', ')],
      ['Callbacks', r.callbacks], ['Resumed', r.resumed ? 'yes' : ''], ['Trace id', r.trace_id],
      ['Events omitted', r.events_omitted],
      ['Devices found', (r.devices || []).map(device).join(', ')],
    ]);
    const link = $('#devices-link');
    link.textContent = 'Registered devices of ' + party(r.callee);
    link.setAttribute('href', '#devices=' + encodeURIComponent(r.callee.service_id) + '/' + encodeURIComponent(r.callee.user_id));
    fillTable('#timeline', (r.events || []).map((e) => {
      const tr = row([time(e.time), e.type, e.notifier, device(e.device), e.attempt || '',
        e.outcome || e.status, e.reason, ms(e.retry_after_ms), ms(e.latency_ms)]);
      tr.dataset.type = e.type;
      if (e.outcome) tr.dataset.outcome = e.outcome;
      return tr;
    }));
    fillTable('#call-notifiers', notifierRows(r.notifiers));
    fillTable('#results', (r.results || []).map((x) => row([x.notifier, device(x.device), x.outcome, x.reason])));
    const sec = $('#call');
    sec.hidden = false;
    if (focus) sec.focus();
  }

  async function showDevices(service, user) {
    const body = await api('/v1/devices/' + encodeURIComponent(service) + '/' + encodeURIComponent(user));
    $('#devices-title').textContent = 'Devices of ' + user + ' @ ' + service;
    const devs = body.devices || [];
    fillTable('#device-list', devs.map((d) => row([d.kind, shortToken(d.token), dateTime(d.updated_at)])));
    const sec = $('#devices');
    sec.hidden = false;
    sec.focus();
  }

  function closeDetails() {
    current = '';
    $('#call').hidden = true;
    $('#devices').hidden = true;
  }

  // route shows what the location's fragment names: #call=SID or
  // #devices=SERVICE/USER.
  function route() {
    const h = location.hash.slice(1);
    const eq = h.indexOf('=');
    const what = eq < 0 ? h : h.slice(0, eq);
    const arg = eq < 0 ? '' : h.slice(eq + 1);
    const decode = (s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    };
    if (what === 'call' && arg) {
      current = decode(arg);
      $('#devices').hidden = true;
      for (const [sid, x] of shown) x.tr.classList.toggle('selected', sid === current);
      showCall(current, true).catch(showError);
    } else if (what === 'devices' && arg.includes('/')) {
      const [svc, user] = arg.split('/');
      showDevices(decode(svc), decode(user)).catch(showError);
    } else {
      closeDetails();
    }
  }
  window.addEventListener('hashchange', route);

  // ---------------------------------------------------------------------
  // Explain.

  // explainQuery takes a notify_cb query or whole URL and returns its
  // query, without the notify token (explain does not need it).
  function explainQuery(text) {
    let q = text.trim();
    const at = q.indexOf('?');
    if (at >= 0) q = q.slice(at + 1);
    q = q.split('#')[0];
    return q.split('&').filter((kv) => kv && !/^token(=|$)/.test(kv)).join('&');
  }

  $('#explain-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('#explained');
    try {
      const r = await api('/v1/explain?' + explainQuery($('#explain-query').value));
      fillList('#explain-summary', [
        ['SID', r.sid], ['Status', r.status], ['Routes', (r.routes || []).join(', ') || 'none'],
        ['Route errors', (r.when_errors || []).join('; ')],
      ]);
      fillTable('#explain-notifiers', notifierRows(r.notifiers));
      fillTable('#explain-devices', (r.devices || []).map((d) => row([d.kind, d.token])));
      out.hidden = false;
      showError(null);
    } catch (err) {
      out.hidden = true;
      showError(err);
    }
  });

  // ---------------------------------------------------------------------

  function start() {
    showError(null);
    stream();
    route();
  }

  $('#forget').hidden = !token;
  start();
})();
