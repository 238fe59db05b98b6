// The factflow dashboard: one ES module, no build step (docs/dashboard.md).
// Every value from the API reaches the page through textContent or attributes (h(), s()),
// never innerHTML; stored HTML is shown only in sandboxed frames, where no script runs.

const KEY_STORAGE = 'factflow.apiKey';
const PAGE_SIZE = 50;
const main = document.getElementById('main');
let session = { auth: 'open', principal: null };
let current = null; // the shown page's lifetime: {abort, timers}

// ---------------------------------------------------------------- elements

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.setAttribute('class', value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// append/replace children, skipping null and false and flattening arrays
function add(el, ...children) {
  append(el, children);
  return el;
}

function fill(el, ...children) {
  el.replaceChildren();
  return add(el, ...children);
}

const link = (href, text, attrs = {}) => h('a', { href, ...attrs }, text);
const short = (id) => (id ? String(id).slice(0, 8) : '');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const badge = (status) => h('span', { class: `badge ${status ?? ''}` }, status ?? '');
const num = (value) => (value === undefined || value === null ? '0' : String(value));

function table(headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((x) => h('th', { scope: 'col' }, x)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((cells) =>
        h(
          'tr',
          {},
          cells.map((c) => h('td', {}, c)),
        ),
      ),
    ),
  );
}

function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

function errorBox(error) {
  const code = error instanceof ApiError ? `${error.status} ${error.code}: ` : '';
  return h('div', { class: 'error', role: 'alert' }, code + error.message);
}

function button(text, onclick, attrs = {}) {
  return h('button', { type: 'button', ...attrs, onclick }, text);
}

// a write button only for who may use it (the server refuses the others anyway)
function writeButton(scope, text, onclick, attrs = {}) {
  return can(scope) ? button(text, onclick, { ...attrs, 'data-write': scope }) : null;
}

function can(scope) {
  const scopes = session.principal?.scopes ?? [];
  return scopes.includes('admin') || scopes.includes(scope);
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function cookie(name) {
  const found = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

function headers(method, json) {
  const out = { Accept: json ? 'application/json' : '*/*' };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) out['X-API-Key'] = key;
  const csrf = cookie('factflow_csrf');
  if (csrf && method !== 'GET') out['X-CSRF-Token'] = csrf;
  return out;
}

async function failure(res) {
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: the status line says it
  }
  const message = data?.detail
    ? typeof data.detail === 'string'
      ? data.detail
      : JSON.stringify(data.detail)
    : res.statusText;
  return new ApiError(res.status, data?.error_code ?? String(res.status), message);
}

async function api(path, { method = 'GET', body, text = false } = {}) {
  const init = { method, headers: headers(method, !text), credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (current) init.signal = current.abort.signal;
  const res = await fetch(path.startsWith('/') ? path : `/api/v1/${path}`, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  if (text) return res.text();
  return res.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}

// Server-sent events over fetch (EventSource cannot send an API key header).
async function sse(path, onEvent, { method = 'GET', body } = {}) {
  const init = {
    method,
    headers: { ...headers(method, false), Accept: 'text/event-stream' },
    credentials: 'same-origin',
    signal: current.abort.signal,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1/${path}`, init);
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: 'message', data: '', id: null };
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const field = line.slice(0, colon);
        const content = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') event.data += content;
        else if (field === 'event') event.event = content;
        else if (field === 'id') event.id = content;
      }
      if (event.data) {
        try {
          event.data = JSON.parse(event.data);
        } catch {
          // a plain-text event: kept as text
        }
        onEvent(event);
      }
    }
  }
}

// a timer that lives as long as the page
function every(ms, fn) {
  const id = setInterval(() => fn().catch(ignoreAbort), ms);
  current.timers.push(id);
}

function ignoreAbort(error) {
  if (error?.name !== 'AbortError') console.warn(error);
}

// ---------------------------------------------------------------- previews

// `**word**` marks (search snippets) as <mark>, the rest as text
function marked(text) {
  return String(text ?? '')
    .split('**')
    .map((part, i) => (i % 2 ? h('mark', {}, part) : part));
}

// a small, safe markdown view: headings, lists, code blocks, paragraphs, all as text
function markdown(text) {
  const out = h('div', { class: 'markdown' });
  let code = null;
  let list = null;
  for (const line of String(text).split('\n')) {
    if (line.startsWith('```')) {
      if (code) {
        add(out, code);
        code = null;
      } else code = h('pre', {});
      continue;
    }
    if (code) {
      add(code, `${line}\n`);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (item) {
      list ??= out.appendChild(h('ul', {}));
      add(list, h('li', {}, marked(item[1])));
      continue;
    }
    list = null;
    if (heading) add(out, h(`h${Math.min(6, heading[1].length + 2)}`, {}, heading[2]));
    else if (line.trim()) add(out, h('p', {}, marked(line)));
  }
  if (code) add(out, code);
  return out;
}

const looksHtml = (text) => /<(html|body|div|p|h[1-6]|article|section)[\s>]/i.test(text);
const looksMarkdown = (text) => /^#{1,6}\s/m.test(text);

// the stored artefact `key`, previewed by kind: HTML sandboxed, markdown, JSON
async function preview(key) {
  const box = h('div', { class: 'preview' }, h('p', { class: 'muted' }, key));
  let text;
  try {
    text = await api(`storage/objects/${key.split('/').map(encodeURIComponent).join('/')}`, {
      text: true,
    });
  } catch (error) {
    add(box, errorBox(error));
    return box;
  }
  const shown = [];
  if (key.endsWith('.html') || key.endsWith('.htm')) shown.push(['html', text]);
  else if (key.endsWith('.md')) shown.push(['markdown', text]);
  else {
    let data = null;
    try {
      data = JSON.parse(text);
    } catch {
      shown.push(['text', text]);
    }
    if (data !== null) {
      shown.push(['json', JSON.stringify(data, null, 2)]);
      // long string fields of the payload: rendered as what they are
      const payload = data && typeof data === 'object' && data.payload ? data.payload : data;
      if (payload && typeof payload === 'object') {
        for (const [field, value] of Object.entries(payload)) {
          if (typeof value !== 'string' || value.length < 80) continue;
          if (looksHtml(value)) shown.push([`html`, value, field]);
          else if (looksMarkdown(value)) shown.push([`markdown`, value, field]);
        }
      }
    }
  }
  // rendered views (HTML, then markdown) before the raw JSON; the first one open
  const rank = { html: 0, markdown: 1, json: 2, text: 2 };
  shown.sort((a, b) => rank[a[0]] - rank[b[0]]);
  shown.forEach(([kind, content, field], i) => {
    const label = field ? `${kind} (${field})` : kind;
    let view;
    if (kind === 'html') {
      // no allow-scripts, no allow-same-origin: the page is inert and has no cookies
      view = h('iframe', { sandbox: '', srcdoc: content, title: `stored HTML ${field ?? key}` });
    } else if (kind === 'markdown') view = markdown(content);
    else view = h('pre', { class: 'json' }, content);
    add(box, h('details', { open: i === 0 }, h('summary', {}, label), view));
  });
  return box;
}

// ---------------------------------------------------------------- pager

// "previous / next" over limit+offset endpoints: one page of rows at a time
function pager(params, rows, go) {
  const offset = Number(params.get('offset') ?? 0);
  const nav = h('nav', { class: 'pager', 'aria-label': 'Pages of rows' });
  if (offset > 0)
    add(
      nav,
      button('← Previous', () => go(Math.max(0, offset - PAGE_SIZE))),
    );
  add(nav, h('span', {}, `rows ${offset + 1}–${offset + rows.length}`));
  if (rows.length === PAGE_SIZE)
    add(
      nav,
      button('Next →', () => go(offset + PAGE_SIZE)),
    );
  return nav;
}

function goWith(path, params, changes) {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === '' || v === null || v === undefined) next.delete(k);
    else next.set(k, v);
  }
  const q = next.toString();
  location.hash = `#/${path}${q ? `?${q}` : ''}`;
}

// ---------------------------------------------------------------- overview

async function overview() {
  const running = h('div', {});
  const failures = h('div', {});
  const letters = h('div', {});
  const rates = new Map(); // route key -> [time, messages_in]
  add(
    main,
    h('h1', {}, 'Overview'),
    h(
      'div',
      { class: 'grid' },
      section('Running executions', running),
      section('Recent failures', failures),
      section('Dead letters waiting', letters),
    ),
  );
  async function refresh() {
    const [live, failed, dead] = await Promise.all([
      api('executions?status=running&limit=20'),
      api('executions?status=failed&limit=5'),
      api('deadletters?pending=true&limit=10'),
    ]);
    const rows = [];
    for (const execution of live) {
      const routes = await api(`executions/${execution.id}/routes`);
      const now = performance.now();
      const perRoute = routes.map((r) => {
        const key = `${execution.id}/${r.route_id}`;
        const before = rates.get(key);
        rates.set(key, [now, r.messages_in]);
        const rate = before ? ((r.messages_in - before[1]) * 1000) / (now - before[0]) : 0;
        return `${r.route_id} ${rate.toFixed(1)}/s`;
      });
      rows.push([
        link(`#/executions/${execution.id}`, `${execution.pipeline_name} ${short(execution.id)}`),
        when(execution.started_at),
        perRoute.join(', '),
      ]);
    }
    fill(running, table(['Execution', 'Started', 'Messages in per route'], rows, 'Nothing is running.'));
    fill(
      failures,
      table(
        ['Execution', 'Failed at', 'Error'],
        failed.map((e) => [
          link(`#/executions/${e.id}`, `${e.pipeline_name} ${short(e.id)}`),
          when(e.completed_at),
          e.error ?? '',
        ]),
        'No failed executions.',
      ),
    );
    fill(
      letters,
      table(
        ['#', 'Route', 'Reason', 'Error'],
        dead.map((d) => [link(`#/deadletters/${d.id}`, String(d.id)), d.route_id, d.reason, d.error ?? '']),
        'No dead letters waiting.',
      ),
      dead.length ? link('#/deadletters?pending=true', 'All dead letters') : null,
    );
  }
  await refresh();
  every(2000, refresh);
}

// ---------------------------------------------------------------- configs

async function configs(params) {
  const offset = Number(params.get('offset') ?? 0);
  const rows = await api(`configs${query({ limit: PAGE_SIZE, offset })}`);
  add(
    main,
    h('h1', {}, 'Configs'),
    writeButton('configs:write', 'New config', () => (location.hash = '#/configs/new')),
    table(
      ['Name', 'Version', 'Runnable', 'Updated'],
      rows.map((c) => [
        link(`#/configs/${c.id}`, c.name),
        String(c.version),
        c.is_runnable ? 'yes' : 'no',
        when(c.updated_at),
      ]),
      'No configs yet.',
    ),
    pager(params, rows, (o) => goWith('configs', params, { offset: o })),
  );
}

const NEW_CONFIG = `version: "1.0"
name: my-pipeline
routes:
  start:
    inbound: {queue: start.in}
    adapters:
      - type: passthrough
    outbound: done
init_message:
  route: start
  payload: {hello: world}
`;

async function configEditor(id) {
  const config = id === 'new' ? null : await api(`configs/${id}`);
  const name = h('input', { id: 'config-name', value: config?.name ?? 'my-pipeline', 'aria-label': 'Name' });
  const editor = h('textarea', {
    id: 'config-yaml',
    spellcheck: 'false',
    'aria-label': 'Pipeline YAML',
    'aria-describedby': 'diagnostics',
  });
  editor.value = config?.config_yaml ?? NEW_CONFIG;
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const diagnostics = h('ol', { id: 'diagnostics', class: 'diagnostics', 'aria-live': 'polite' });
  const verdict = h('p', { id: 'verdict', class: 'muted' });
  const result = h('div', {});
  const readOnly = !can('configs:write');
  if (readOnly) editor.readOnly = true;

  function drawGutter(issues) {
    const byLine = new Map();
    for (const issue of issues) if (issue.line) byLine.set(issue.line, issue.severity);
    const lines = editor.value.split('\n').length;
    fill(
      gutter,
      ...Array.from({ length: lines }, (_, i) => {
        const severity = byLine.get(i + 1);
        return h('span', { class: severity ?? null, 'data-line': i + 1 }, `${i + 1}\n`);
      }),
    );
    gutter.scrollTop = editor.scrollTop;
  }

  function jump(line) {
    const lines = editor.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  }

  let pending = null;
  let issues = [];
  async function validate() {
    const report = await api('configs/validate', { method: 'POST', body: { config_yaml: editor.value } });
    issues = report.issues;
    verdict.textContent = report.is_valid
      ? `valid (${report.warning_count} warnings)`
      : `${report.error_count} errors, ${report.warning_count} warnings`;
    verdict.className = report.is_valid ? 'ok' : 'bad';
    fill(
      diagnostics,
      ...issues.map((issue) =>
        h(
          'li',
          { class: issue.severity, 'data-code': issue.code, 'data-line': issue.line ?? '' },
          button(`line ${issue.line ?? '?'}:${issue.column ?? '?'}`, () => issue.line && jump(issue.line), {
            class: 'linkish',
          }),
          ` ${issue.severity} ${issue.code} ${issue.message}`,
          issue.suggestion ? h('div', { class: 'fix' }, `fix: ${issue.suggestion}`) : null,
        ),
      ),
    );
    drawGutter(issues);
  }
  editor.addEventListener('input', () => {
    drawGutter(issues);
    clearTimeout(pending);
    pending = setTimeout(() => validate().catch((e) => fill(verdict, errorBox(e))), 300);
  });
  editor.addEventListener('scroll', () => (gutter.scrollTop = editor.scrollTop));

  async function save() {
    const body = { name: name.value, config_yaml: editor.value };
    const saved = config
      ? await api(`configs/${config.id}`, { method: 'PUT', body })
      : await api('configs', { method: 'POST', body });
    return saved;
  }
  async function act(fn) {
    fill(result);
    try {
      await fn();
    } catch (error) {
      fill(result, errorBox(error));
    }
  }
  const inputs = h('textarea', {
    id: 'run-inputs',
    class: 'small',
    'aria-label': 'Inline inputs as JSON: queue to list of messages',
    placeholder: '{"queue.name": [{"text": "hello"}]}',
  });

  add(
    main,
    h('h1', {}, config ? `Config ${config.name} (version ${config.version})` : 'New config'),
    h('label', { for: 'config-name' }, 'Name '),
    name,
    h('div', { class: 'editor' }, gutter, editor),
    verdict,
    diagnostics,
    h(
      'div',
      { class: 'actions' },
      writeButton('configs:write', config ? 'Save as new version' : 'Create', () =>
        act(async () => {
          const saved = await save();
          location.hash = `#/configs/${saved.id}`;
          if (config && saved.id === config.id) route();
        }),
      ),
      can('executions:run') ? h('label', { for: 'run-inputs' }, 'Inputs (optional JSON)') : null,
      can('executions:run') ? inputs : null,
      writeButton('executions:run', 'Save and run', () =>
        act(async () => {
          const saved = can('configs:write') ? await save() : config;
          const body = inputs.value.trim() ? { inputs: JSON.parse(inputs.value) } : {};
          const started = await api(`configs/${saved.id}/run`, { method: 'POST', body });
          location.hash = `#/executions/${started.execution_id}`;
        }),
      ),
    ),
    result,
  );
  if (config) {
    const [versions, executions] = await Promise.all([
      api(`configs/${config.id}/versions`),
      api(`executions${query({ config_id: config.id, limit: 10 })}`),
    ]);
    add(
      main,
      section(
        'Versions',
        table(
          ['Version', 'Created', 'Valid'],
          versions.map((v) => [
            String(v.version),
            when(v.created_at),
            v.validation_report?.is_valid ? 'yes' : 'no',
          ]),
        ),
      ),
      section(
        'Recent executions',
        table(
          ['Execution', 'Status', 'Started'],
          executions.map((e) => [
            link(`#/executions/${e.id}`, short(e.id)),
            badge(e.status),
            when(e.started_at),
          ]),
          'Not run yet.',
        ),
      ),
    );
  }
  await validate();
}

// ---------------------------------------------------------------- executions

const STATUSES = ['', 'pending', 'running', 'cancelling', 'completed', 'failed', 'cancelled', 'interrupted'];

async function executions(params) {
  const status = params.get('status') ?? '';
  const offset = Number(params.get('offset') ?? 0);
  const rows = await api(`executions${query({ status, limit: PAGE_SIZE, offset })}`);
  const filter = h(
    'select',
    {
      id: 'status-filter',
      onchange: (e) => goWith('executions', params, { status: e.target.value, offset: '' }),
    },
    STATUSES.map((x) => h('option', { value: x, selected: x === status }, x || 'any status')),
  );
  add(
    main,
    h('h1', {}, 'Executions'),
    h('label', { for: 'status-filter' }, 'Status '),
    filter,
    table(
      ['Execution', 'Pipeline', 'Status', 'Source', 'Started', 'Duration'],
      rows.map((e) => [
        link(`#/executions/${e.id}`, short(e.id)),
        e.pipeline_name,
        badge(e.status),
        e.source,
        when(e.started_at),
        e.duration_seconds ? `${e.duration_seconds.toFixed(1)} s` : '',
      ]),
      'No executions.',
    ),
    pager(params, rows, (o) => goWith('executions', params, { offset: o })),
  );
}

const LOG_TAIL = 8000; // characters of each worker log
const LINEAGE_ROWS = 20; // the first rows; the explorer pages through the rest
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

// routes in columns by their distance from a source (queue edges), adapters stacked inside
function layoutDag(dag) {
  const routes = dag.nodes.filter((n) => n.type === 'route');
  const links = dag.edges.filter((e) => e.type === 'queue');
  const layer = new Map(routes.map((r) => [r.id, 0]));
  for (let pass = 0; pass < routes.length; pass += 1) {
    for (const e of links) {
      if (e.from === e.to) continue;
      const next = Math.max(layer.get(e.to) ?? 0, (layer.get(e.from) ?? 0) + 1);
      if (next < routes.length) layer.set(e.to, next);
    }
  }
  const adapters = (routeId) => dag.nodes.filter((n) => n.type === 'adapter' && n.route_id === routeId);
  const boxes = new Map();
  const heights = [];
  for (const r of routes) {
    const col = layer.get(r.id);
    const height = 48 + adapters(r.id).length * 50;
    const y = heights[col] ?? 10;
    boxes.set(r.id, { x: 10 + col * 320, y, width: 230, height, col });
    heights[col] = y + height + 30;
  }
  return {
    routes,
    links,
    boxes,
    adapters,
    height: Math.max(...heights, 60) + 10,
    width: 10 + (Math.max(0, ...layer.values()) + 1) * 320,
  };
}

function drawDag(dag) {
  const { routes, links, boxes, adapters, height, width } = layoutDag(dag);
  const svg = s('svg', {
    class: 'dag',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': `The routes and adapters of ${dag.pipeline}`,
  });
  add(
    svg,
    s(
      'defs',
      {},
      s(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 8,
          markerHeight: 8,
          orient: 'auto',
        },
        s('path', { d: 'M0,0 L10,5 L0,10 z' }),
      ),
    ),
  );
  for (const e of links) {
    const a = boxes.get(e.from);
    const b = boxes.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + a.width;
    const y1 = a.y + 20;
    const x2 = e.from === e.to ? a.x + a.width - 20 : b.x;
    const y2 = e.from === e.to ? a.y : b.y + 20;
    const mid = (x1 + x2) / 2;
    add(
      svg,
      s('path', {
        class: 'edge',
        d: `M${x1},${y1} C${mid + 20},${y1} ${mid - 20},${y2} ${x2},${y2}`,
        'marker-end': 'url(#arrow)',
      }),
      s('text', { class: 'queue', x: mid, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' }, e.queue),
    );
  }
  for (const r of routes) {
    const box = boxes.get(r.id);
    const group = s('g', { 'data-node': r.id, class: 'route' });
    add(
      group,
      s('rect', { x: box.x, y: box.y, width: box.width, height: box.height, rx: 8 }),
      s('text', { x: box.x + 10, y: box.y + 18, class: 'title' }, `${r.label} (${r.queue})`),
      s(
        'text',
        { x: box.x + 10, y: box.y + 36, class: 'count', 'data-route': r.id },
        'in 0 · out 0 · in flight 0',
      ),
    );
    adapters(r.id).forEach((a, i) => {
      const y = box.y + 46 + i * 50;
      add(
        group,
        s(
          'g',
          { 'data-node': a.id, class: 'adapter' },
          s('rect', { x: box.x + 10, y, width: box.width - 20, height: 42, rx: 5 }),
          s('text', { x: box.x + 18, y: y + 16, class: 'title' }, a.label),
          s(
            'text',
            { x: box.x + 18, y: y + 33, class: 'count', 'data-adapter': a.id },
            'done 0 · running 0 · failed 0',
          ),
        ),
      );
    });
    add(svg, group);
  }
  return svg;
}

async function execution(id) {
  const head = h('div', { class: 'exec-head' });
  const status = h('span', { id: 'exec-status', class: 'badge' });
  const buttons = h('div', { class: 'actions' });
  const totals = h('p', { id: 'totals', class: 'muted' });
  const dagBox = h('div', { class: 'dag-box' });
  const routesBox = h('div', {});
  const log = h('ol', { id: 'events', class: 'events', reversed: true });
  const result = h('div', {});
  const lineageBox = h('div', {});
  const logsBox = h('div', { id: 'worker-logs' });
  add(
    main,
    head,
    h('p', {}, 'Status: ', status),
    buttons,
    result,
    totals,
    section('DAG', dagBox),
    section('Routes', routesBox),
    h('div', { class: 'grid' }, section('Events (live)', log), section('Lineage', lineageBox)),
    section('Worker logs', logsBox),
  );
  let info = await api(`executions/${id}`);
  fill(
    head,
    h('h1', {}, `Execution ${short(id)} of ${info.pipeline_name}`),
    info.config_id ? link(`#/configs/${info.config_id}`, `config version ${info.config_version}`) : null,
  );
  const dag = await api(`executions/${id}/dag`);
  fill(dagBox, drawDag(dag));
  const stages = dag.nodes.filter((n) => n.type === 'adapter');

  async function act(fn) {
    fill(result);
    try {
      await fn();
    } catch (error) {
      fill(result, errorBox(error));
    }
  }

  function drawButtons() {
    const stage = h(
      'select',
      { id: 'replay-stage', 'aria-label': 'Stage to replay from' },
      stages.map((n) =>
        h('option', { value: `${n.route_id}\t${n.stage_name}` }, `${n.route_id} / ${n.stage_name}`),
      ),
    );
    fill(
      buttons,
      info.status === 'running' || info.status === 'pending'
        ? writeButton('executions:run', 'Cancel', () =>
            act(async () => {
              await api(`executions/${id}/cancel`, { method: 'POST' });
            }),
          )
        : null,
      info.status === 'interrupted'
        ? writeButton('executions:run', 'Resume', () =>
            act(async () => {
              const started = await api(`executions/${id}/resume`, { method: 'POST' });
              location.hash = `#/executions/${started.execution_id}`;
            }),
          )
        : null,
      TERMINAL.has(info.status) && can('executions:run') && stages.length
        ? [
            stage,
            writeButton('executions:run', 'Replay from stage', () =>
              act(async () => {
                const [route, name] = stage.value.split('\t');
                const replay = await api(`executions/${id}/replay`, {
                  method: 'POST',
                  body: { from_stage: name, from_route: route },
                });
                if (replay.execution_id) location.hash = `#/executions/${replay.execution_id}`;
                else fill(result, h('p', {}, `nothing to replay (${replay.messages} messages)`));
              }),
            ),
          ]
        : null,
    );
  }

  function setStatus(value) {
    status.textContent = value;
    status.className = `badge ${value}`;
    status.setAttribute('data-status', value);
  }
  setStatus(info.status);
  drawButtons();

  let lineageShown = 0;
  // one <pre> per worker process, its text replaced in place (open ones stay open)
  function drawLogs(logs) {
    const names = Object.keys(logs);
    if (!names.length) {
      fill(logsBox, h('p', { class: 'empty' }, 'No worker logs on this server instance.'));
      return;
    }
    for (const name of names) {
      let pre = logsBox.querySelector(`pre[data-log="${CSS.escape(name)}"]`);
      if (!pre) {
        if (!logsBox.querySelector('details')) fill(logsBox);
        pre = h('pre', { class: 'json', 'data-log': name });
        add(logsBox, h('details', {}, h('summary', {}, name), pre));
      }
      pre.textContent = logs[name] || '(empty)';
    }
  }
  async function refresh() {
    const [routes, stats] = await Promise.all([
      api(`executions/${id}/routes`),
      api(`executions/${id}/stats`),
    ]);
    for (const r of routes) {
      const text = dagBox.querySelector(`[data-route="${CSS.escape(r.route_id)}"]`);
      if (text)
        text.textContent = `in ${num(r.messages_in)} · out ${num(r.messages_out)} · in flight ${num(r.in_flight)}`;
    }
    for (const a of stats.adapters) {
      const text = dagBox.querySelector(`[data-adapter="${CSS.escape(`${a.route_id}/${a.adapter_index}`)}"]`);
      if (text)
        text.textContent = `done ${num(a.completed)} · running ${num(a.in_progress)} · failed ${num(a.failed + a.dead_lettered)}`;
    }
    const t = stats.totals;
    totals.textContent =
      `${t.total} stage runs: ${t.completed} completed, ${t.filtered} filtered, ${t.failed} failed, ${t.dead_lettered} dead-lettered, ${t.in_progress} in progress` +
      (stats.throughput_per_second ? ` · ${stats.throughput_per_second}/s` : '');
    fill(
      routesBox,
      table(
        ['Route', 'Queue', 'Processor', 'In', 'Out', 'In flight', 'Completed', 'Failed', 'Dead', ''],
        routes.map((r) => [
          r.name,
          r.provider_queue,
          r.processor_status,
          num(r.messages_in),
          num(r.messages_out),
          num(r.in_flight),
          num(r.completed),
          num(r.failed),
          r.dead_letters
            ? link(
                `#/deadletters?execution_id=${id}&route_id=${encodeURIComponent(r.route_id)}`,
                String(r.dead_letters),
              )
            : '0',
          r.processor_status === 'running' || r.processor_status === 'paused'
            ? writeButton(
                'executions:run',
                r.processor_status === 'paused' ? 'Resume route' : 'Pause route',
                () =>
                  act(async () => {
                    await api(`pipelines/${encodeURIComponent(r.route_id)}`, {
                      method: 'PATCH',
                      body: { state: r.processor_status === 'paused' ? 'running' : 'paused' },
                    });
                    await refresh();
                  }),
              )
            : '',
        ]),
      ),
    );
    const { logs } = await api(`executions/${id}/logs?tail=${LOG_TAIL}`);
    drawLogs(logs);
    if (lineageShown < LINEAGE_ROWS) {
      const rows = await api(`executions/${id}/lineage?limit=${LINEAGE_ROWS}`);
      lineageShown = rows.length;
      fill(
        lineageBox,
        table(
          ['Stage', 'Status', 'ms'],
          rows.map((row) => [
            link(`#/lineage?id=${row.id}`, `${row.route_id}/${row.stage_name}`),
            badge(row.status),
            row.duration_ms ? row.duration_ms.toFixed(1) : '',
          ]),
          'No lineage yet.',
        ),
        link(`#/lineage?execution_id=${id}`, 'Explore all of its lineage'),
      );
    }
  }

  let queued = null;
  const soon = () => {
    if (queued) return;
    queued = setTimeout(() => {
      queued = null;
      refresh().catch(ignoreAbort);
    }, 300);
  };
  await refresh();
  // worker counts arrive with heartbeats, not events: poll while it runs
  every(1500, async () => {
    if (!TERMINAL.has(info.status)) await refresh();
  });
  sse(`executions/${id}/events`, (event) => {
    if (event.event === 'status') return setStatus(event.data.status);
    log.prepend(h('li', {}, `${when(event.data.created_at)} ${event.event}`));
    while (log.children.length > 100) log.lastChild.remove();
    if (event.data.status) {
      setStatus(event.data.status);
      info = { ...info, status: event.data.status };
      drawButtons();
    }
    soon();
  })
    .then(() => refresh())
    .catch(ignoreAbort);
}

// ---------------------------------------------------------------- lineage

const FINDERS = [
  ['id', 'lineage id'],
  ['message_id', 'message id'],
  ['url', 'URL (part)'],
  ['document_id', 'document id'],
  ['execution_id', 'execution id'],
];

function chainNode(row, selected, onSelect) {
  return h(
    'li',
    { class: `chain-node ${row.id === selected ? 'selected' : ''}`, 'data-lineage': row.id },
    button(`${row.route_id} / ${row.stage_name}`, () => onSelect(row), {
      class: 'linkish',
      'aria-pressed': String(row.id === selected),
    }),
    ' ',
    badge(row.status),
    row.duration_ms !== null && row.duration_ms !== undefined ? ` ${row.duration_ms.toFixed(0)} ms` : '',
    row.metadata?.url ? h('div', { class: 'muted' }, row.metadata.url) : null,
  );
}

async function lineage(params) {
  const field = FINDERS.find(([k]) => params.get(k))?.[0] ?? 'id';
  const value = params.get(field) ?? '';
  const select = h(
    'select',
    { id: 'find-by', 'aria-label': 'Find by' },
    FINDERS.map(([k, label]) => h('option', { value: k, selected: k === field }, label)),
  );
  const input = h('input', { id: 'find-value', value, 'aria-label': 'Value', size: 50 });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        location.hash = `#/lineage?${select.value}=${encodeURIComponent(input.value.trim())}`;
      },
    },
    select,
    input,
    h('button', { type: 'submit' }, 'Find'),
  );
  add(main, h('h1', {}, 'Lineage explorer'), form);
  if (!value) {
    add(
      main,
      h('p', { class: 'muted' }, 'Find a chain by lineage id, message id, URL, document id or execution.'),
    );
    return;
  }
  if (field !== 'id') {
    const offset = Number(params.get('offset') ?? 0);
    const rows = await api(`lineage${query({ [field]: value, limit: PAGE_SIZE, offset })}`);
    add(
      main,
      table(
        ['Stage', 'Status', 'Execution', 'URL', 'Started'],
        rows.map((r) => [
          link(`#/lineage?id=${r.id}`, `${r.route_id}/${r.stage_name}`),
          badge(r.status),
          short(r.execution_id),
          r.metadata?.url ?? '',
          when(r.started_at),
        ]),
        'No lineage rows match.',
      ),
      pager(params, rows, (o) => goWith('lineage', params, { offset: o })),
    );
    return;
  }
  const chain = await api(`lineage/${encodeURIComponent(value)}/chain`);
  const panel = h('div', { class: 'preview-panel' });
  const graph = h('ol', { class: 'chain', 'aria-label': 'Lineage chain, root first' });
  // the API lists ancestors nearest first; the graph reads from the root down
  const rows = [...chain.ancestors].reverse().concat([chain.entry]);
  let selected = chain.entry.id;
  function choose(row) {
    selected = row.id;
    draw();
    fill(
      panel,
      h('h3', {}, `${row.route_id} / ${row.stage_name}`),
      h(
        'dl',
        {},
        ['id', 'status', 'execution_id', 'message_id', 'started_at', 'attempts'].flatMap((k) => [
          h('dt', {}, k),
          h('dd', {}, String(row[k] ?? '')),
        ]),
      ),
      row.error_info ? h('pre', { class: 'json' }, JSON.stringify(row.error_info, null, 2)) : null,
      row.id !== chain.entry.id ? link(`#/lineage?id=${row.id}`, 'Follow this one') : null,
    );
    if (row.storage_key) preview(row.storage_key).then((box) => add(panel, box), ignoreAbort);
    else add(panel, h('p', { class: 'muted' }, 'No stored artefact for this stage.'));
  }
  function draw() {
    const depth = new Map();
    fill(graph, ...rows.map((row) => chainNode(row, selected, choose)));
    const kids = h('ul', { class: 'descendants', 'aria-label': 'Descendants' });
    for (const row of chain.descendants) {
      const d = (depth.get(row.parent_id) ?? 0) + 1;
      depth.set(row.id, d);
      const node = chainNode(row, selected, choose);
      node.style.marginLeft = `${(d - 1) * 1.2}em`;
      add(kids, node);
    }
    if (chain.descendants.length)
      add(
        graph,
        h(
          'li',
          { class: 'chain-kids' },
          h('span', { class: 'muted' }, `${chain.descendants.length} descendants`),
          kids,
        ),
      );
  }
  add(
    main,
    h(
      'div',
      { class: 'split' },
      section('Chain (ancestors → this → descendants)', graph),
      section('Stage', panel),
    ),
  );
  choose(chain.entry);
}

// ---------------------------------------------------------------- storage

async function storage(params) {
  const prefix = params.get('prefix') ?? '';
  const key = params.get('key');
  const listing = await api(`storage/objects${query({ prefix, limit: 500 })}`);
  const folders = new Map();
  const files = [];
  for (const object of listing.objects) {
    const rest = object.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) folders.set(rest.slice(0, slash + 1), (folders.get(rest.slice(0, slash + 1)) ?? 0) + 1);
    else files.push(object);
  }
  const crumbs = [link('#/storage', 'storage')];
  let acc = '';
  for (const part of prefix.split('/').filter(Boolean)) {
    acc += `${part}/`;
    crumbs.push(' / ', link(`#/storage?prefix=${encodeURIComponent(acc)}`, part));
  }
  const panel = h('div', {});
  add(
    main,
    h('h1', {}, 'Storage'),
    h('nav', { class: 'crumbs', 'aria-label': 'Folder' }, crumbs),
    listing.truncated
      ? h('p', { class: 'muted' }, 'Showing the first 500 objects; open a folder to narrow.')
      : null,
    h(
      'div',
      { class: 'split' },
      section(
        'Objects',
        table(
          ['Name', 'Size', 'Modified'],
          [
            ...[...folders].map(([name, count]) => [
              link(`#/storage?prefix=${encodeURIComponent(prefix + name)}`, name),
              `${count} objects`,
              '',
            ]),
            ...files.map((o) => [
              link(
                `#/storage?prefix=${encodeURIComponent(prefix)}&key=${encodeURIComponent(o.key)}`,
                o.key.slice(prefix.length),
              ),
              `${o.size} B`,
              when(o.last_modified),
            ]),
          ],
          'No objects.',
        ),
      ),
      section('Preview', panel),
    ),
  );
  if (key) add(panel, await preview(key));
}

// ---------------------------------------------------------------- dead letters

async function deadletters(params) {
  const offset = Number(params.get('offset') ?? 0);
  const filters = {
    execution_id: params.get('execution_id') ?? '',
    route_id: params.get('route_id') ?? '',
    reason: params.get('reason') ?? '',
    pending: params.get('pending') ?? '',
  };
  const rows = await api(`deadletters${query({ ...filters, limit: PAGE_SIZE, offset })}`);
  const inputs = Object.fromEntries(
    ['execution_id', 'route_id', 'reason'].map((k) => [
      k,
      h('input', { id: `dl-${k}`, value: filters[k], 'aria-label': k.replace('_', ' ') }),
    ]),
  );
  const pending = h('input', { id: 'dl-pending', type: 'checkbox', checked: filters.pending === 'true' });
  const result = h('div', {});
  add(
    main,
    h('h1', {}, 'Dead letters'),
    h(
      'form',
      {
        class: 'inline',
        onsubmit: (e) => {
          e.preventDefault();
          goWith('deadletters', new URLSearchParams(), {
            ...Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()])),
            pending: pending.checked ? 'true' : '',
          });
        },
      },
      Object.values(inputs).map((el) => [h('label', { for: el.id }, el.getAttribute('aria-label')), el]),
      h('label', { for: 'dl-pending' }, 'not redriven only'),
      pending,
      h('button', { type: 'submit' }, 'Filter'),
    ),
    result,
    table(
      ['#', 'Route', 'Reason', 'Error', 'Attempts', 'Created', 'Redriven', ''],
      rows.map((d) => [
        link(`#/deadletters/${d.id}`, String(d.id)),
        d.route_id,
        d.reason,
        d.error ?? '',
        String(d.attempts),
        when(d.created_at),
        d.redriven_at ? when(d.redriven_at) : 'no',
        d.redriven_at
          ? ''
          : writeButton('executions:run', 'Redrive', () => redrive(d.id, result), { 'data-letter': d.id }),
      ]),
      'No dead letters.',
    ),
    pager(params, rows, (o) => goWith('deadletters', params, { offset: o })),
  );
}

async function redrive(id, result, into = 'queue') {
  try {
    const answer = await api('deadletters/redrive', { method: 'POST', body: { ids: [id], into } });
    fill(
      result,
      h(
        'p',
        { class: 'ok', role: 'status' },
        `redriven: ${answer.redriven}`,
        answer.executions.map((e) => [' ', link(`#/executions/${e}`, short(e))]),
      ),
    );
    setTimeout(route, 800);
  } catch (error) {
    fill(result, errorBox(error));
  }
}

async function deadletter(id) {
  const d = await api(`deadletters/${id}`);
  const result = h('div', {});
  add(
    main,
    h('h1', {}, `Dead letter ${d.id}`),
    h(
      'dl',
      {},
      [
        'execution_id',
        'route_id',
        'queue',
        'reason',
        'error_type',
        'error',
        'attempts',
        'created_at',
        'redriven_at',
      ].flatMap((k) => [h('dt', {}, k), h('dd', {}, String(d[k] ?? ''))]),
    ),
    d.lineage_id ? link(`#/lineage?id=${d.lineage_id}`, 'Its lineage') : null,
    h('h2', {}, 'Message'),
    h('pre', { class: 'json' }, JSON.stringify(d.message, null, 2)),
    h(
      'div',
      { class: 'actions' },
      d.redriven_at
        ? null
        : writeButton('executions:run', 'Redrive onto its queue', () => redrive(d.id, result)),
      d.redriven_at
        ? null
        : writeButton('executions:run', 'Redrive into a new execution', () =>
            redrive(d.id, result, 'execution'),
          ),
      writeButton('executions:run', 'Discard', async () => {
        try {
          await api(`deadletters/${d.id}`, { method: 'DELETE' });
          location.hash = '#/deadletters';
        } catch (error) {
          fill(result, errorBox(error));
        }
      }),
    ),
    result,
  );
}

// ---------------------------------------------------------------- search

async function search(params) {
  const q = params.get('q') ?? '';
  const mode = params.get('mode') ?? 'keyword';
  const input = h('input', {
    id: 'search-q',
    type: 'search',
    value: q,
    size: 50,
    'aria-label': 'Search text',
  });
  const modes = h(
    'select',
    { id: 'search-mode', 'aria-label': 'Search mode' },
    ['keyword', 'hybrid', 'semantic'].map((m) => h('option', { value: m, selected: m === mode }, m)),
  );
  add(
    main,
    h('h1', {}, 'Search'),
    h(
      'form',
      {
        class: 'inline',
        role: 'search',
        onsubmit: (e) => {
          e.preventDefault();
          goWith('search', new URLSearchParams(), { q: input.value.trim(), mode: modes.value });
        },
      },
      input,
      modes,
      h('button', { type: 'submit' }, 'Search'),
    ),
  );
  if (!q) return;
  const offset = Number(params.get('offset') ?? 0);
  const path = mode === 'semantic' ? 'search' : `search/${mode}`;
  const answer = await api(path, { method: 'POST', body: { query: q, limit: 20, offset } });
  add(
    main,
    h('p', { class: 'muted' }, `${answer.total} results (${answer.mode})`),
    h(
      'ol',
      { class: 'results', start: offset + 1 },
      answer.results.map((hit) =>
        h(
          'li',
          {},
          h('strong', {}, hit.title || '(untitled)'),
          hit.heading_path?.length ? h('span', { class: 'muted' }, ` ${hit.heading_path.join(' › ')}`) : null,
          h('p', {}, marked(hit.snippet)),
          h(
            'p',
            { class: 'cite' },
            `[${hit.rank}] `,
            hit.url ? h('a', { href: hit.url, rel: 'noopener noreferrer' }, hit.url) : 'no URL',
            hit.lineage_id ? [' · ', link(`#/lineage?id=${hit.lineage_id}`, 'lineage')] : null,
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- webhooks

async function webhooks(params) {
  const offset = Number(params.get('offset') ?? 0);
  const rows = await api(`webhooks${query({ limit: PAGE_SIZE, offset })}`);
  const result = h('div', {});
  const url = h('input', { id: 'hook-url', type: 'url', size: 40, 'aria-label': 'Receiver URL' });
  const events = h('input', {
    id: 'hook-events',
    value: 'execution.completed,execution.failed',
    size: 40,
    'aria-label': 'Event types, comma-separated',
  });
  add(
    main,
    h('h1', {}, 'Webhooks'),
    can('webhooks:manage')
      ? h(
          'form',
          {
            class: 'inline',
            onsubmit: async (e) => {
              e.preventDefault();
              try {
                const made = await api('webhooks', {
                  method: 'POST',
                  body: {
                    url: url.value,
                    event_types: events.value
                      .split(',')
                      .map((x) => x.trim())
                      .filter(Boolean),
                  },
                });
                fill(
                  result,
                  h('p', { class: 'ok' }, `created; its signing secret (shown once): ${made.secret}`),
                );
              } catch (error) {
                fill(result, errorBox(error));
              }
            },
          },
          h('label', { for: 'hook-url' }, 'URL'),
          url,
          h('label', { for: 'hook-events' }, 'Events'),
          events,
          h('button', { type: 'submit', 'data-write': 'webhooks:manage' }, 'Subscribe'),
        )
      : null,
    result,
    table(
      ['URL', 'Events', 'Active', 'Created'],
      rows.map((w) => [
        link(`#/webhooks/${w.webhook_id}`, w.url),
        w.event_types.join(', '),
        w.is_active ? 'yes' : 'paused',
        when(w.created_at),
      ]),
      'No webhooks.',
    ),
    pager(params, rows, (o) => goWith('webhooks', params, { offset: o })),
  );
}

async function webhook(id, params) {
  const w = await api(`webhooks/${id}`);
  const offset = Number(params.get('offset') ?? 0);
  const deliveries = await api(`webhooks/${id}/deliveries${query({ limit: PAGE_SIZE, offset })}`);
  const result = h('div', {});
  const detail = h('div', {});
  const act = async (fn) => {
    try {
      await fn();
      setTimeout(route, 500);
    } catch (error) {
      fill(result, errorBox(error));
    }
  };
  add(
    main,
    h('h1', {}, `Webhook ${w.url}`),
    h('p', {}, `events: ${w.event_types.join(', ')} · ${w.is_active ? 'active' : 'paused'}`),
    h(
      'div',
      { class: 'actions' },
      writeButton('webhooks:manage', 'Send a test event', () =>
        act(() => api(`webhooks/${id}/test`, { method: 'POST' })),
      ),
      writeButton('webhooks:manage', w.is_active ? 'Pause' : 'Resume', () =>
        act(() => api(`webhooks/${id}/${w.is_active ? 'pause' : 'resume'}`, { method: 'POST' })),
      ),
    ),
    result,
    table(
      ['Event', 'Status', 'Attempts', 'Last code', 'Last error', 'Created', ''],
      deliveries.map((d) => [
        button(
          d.event_type,
          async () => {
            const full = await api(`webhooks/${id}/deliveries/${d.delivery_id}`);
            fill(
              detail,
              section(
                `Delivery ${short(d.delivery_id)}`,
                table(
                  ['#', 'Started', 'Code', 'ms', 'Error'],
                  (full.attempt_log ?? []).map((a) => [
                    String(a.attempt),
                    when(a.started_at),
                    String(a.status_code ?? ''),
                    a.latency_ms.toFixed(0),
                    a.error ?? '',
                  ]),
                ),
                h('pre', { class: 'json' }, JSON.stringify(full.body, null, 2)),
              ),
            );
          },
          { class: 'linkish' },
        ),
        badge(d.status),
        String(d.attempts),
        String(d.last_status_code ?? ''),
        d.last_error ?? '',
        when(d.created_at),
        writeButton('webhooks:manage', 'Redeliver', () =>
          act(() => api(`webhooks/${id}/deliveries/${d.delivery_id}/redeliver`, { method: 'POST' })),
        ),
      ]),
      'No deliveries yet.',
    ),
    pager(params, deliveries, (o) => goWith(`webhooks/${id}`, params, { offset: o })),
    detail,
  );
}

// ---------------------------------------------------------------- chat and usage

// the answer's text with each [n] a link to source n below it
function cited(text, count) {
  return String(text)
    .split(/(\[\d+\])/)
    .map((part) => {
      const n = /^\[(\d+)\]$/.exec(part);
      return n && Number(n[1]) <= count ? h('a', { href: `#source-${n[1]}`, class: 'cite-ref' }, part) : part;
    });
}

function sourcesList(citations) {
  return h(
    'ol',
    { class: 'sources', 'aria-label': 'Sources' },
    citations.map((c) =>
      h(
        'li',
        { id: `source-${c.number}`, value: c.number, 'data-source': c.number },
        h('strong', {}, c.title || c.url || 'untitled'),
        c.heading_path?.length ? h('span', { class: 'muted' }, ` ${c.heading_path.join(' › ')}`) : null,
        h('blockquote', {}, c.quote || c.text),
        h(
          'p',
          { class: 'cite' },
          c.url ? h('a', { href: c.url, rel: 'noopener noreferrer' }, c.url) : 'no URL',
          c.lineage_id ? [' · ', link(`#/lineage?id=${c.lineage_id}`, 'lineage')] : null,
        ),
      ),
    ),
  );
}

async function chat() {
  const caps = await api('chat/capabilities').catch((error) => ({ error }));
  const question = h('textarea', {
    id: 'chat-q',
    class: 'question',
    'aria-label': 'Question',
    placeholder: 'Ask about what was ingested',
  });
  const thread = h('div', { id: 'chat-thread', 'aria-live': 'polite' });
  const history = [];
  main.append(
    h('h1', {}, 'Chat'),
    caps.error
      ? errorBox(caps.error)
      : h(
          'p',
          { class: 'muted' },
          caps.mode === 'llm'
            ? `answers by ${caps.model}`
            : 'extractive answers: the best sentences of the sources (no LLM configured)',
        ),
  );
  if (!can('chat:use')) {
    main.append(h('p', { class: 'muted' }, 'Asking needs the chat:use scope.'));
    return;
  }
  async function ask() {
    const text = question.value.trim();
    if (!text) return;
    question.value = '';
    const answer = h('p', { class: 'answer', 'data-state': 'streaming' });
    const sources = h('div', {});
    const meta = h('p', { class: 'muted answer-meta' });
    const turn = h('article', { class: 'turn' }, h('h2', {}, text), answer, sources, meta);
    thread.prepend(turn);
    let raw = '';
    let citations = [];
    try {
      await sse(
        'chat',
        (event) => {
          if (event.event === 'citations') {
            citations = event.data.citations;
            fill(sources, h('h3', {}, 'Sources'), sourcesList(citations));
          } else if (event.event === 'token') {
            raw += event.data.text;
            fill(answer, cited(raw, citations.length));
          } else if (event.event === 'done') {
            raw = event.data.answer ?? raw;
            fill(answer, cited(raw, citations.length));
            answer.dataset.state = 'done';
            const u = event.data.usage ?? {};
            meta.textContent = `${event.data.mode}${event.data.model ? ` (${event.data.model})` : ''} · ${Math.round(event.data.latency_ms ?? 0)} ms · ${u.prompt_tokens ?? 0}+${u.completion_tokens ?? 0} tokens${u.cost_usd ? ` · $${u.cost_usd.toFixed(4)}` : ''}`;
          } else if (event.event === 'error') {
            answer.dataset.state = 'error';
            add(turn, errorBox(new Error(event.data.detail ?? 'the answer failed')));
          }
        },
        { method: 'POST', body: { question: text, stream: true, history: history.slice(-6) } },
      );
      history.push({ role: 'user', content: text }, { role: 'assistant', content: raw });
    } catch (error) {
      if (error?.name === 'AbortError') return;
      answer.dataset.state = 'error';
      add(turn, errorBox(error));
    }
  }
  main.append(
    h(
      'form',
      {
        class: 'chat-form',
        onsubmit: (e) => {
          e.preventDefault();
          ask();
        },
      },
      question,
      h('button', { type: 'submit', 'data-write': 'chat:use' }, 'Ask'),
    ),
    thread,
  );
}

// tokens per day as stacked bars, one colour per model
function usageChart(groups) {
  const days = [...new Set(groups.map((g) => g.key.day))].sort();
  const models = [...new Set(groups.map((g) => g.key.model ?? 'unknown'))];
  const colours = ['#1f5fbf', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490'];
  const max = Math.max(
    1,
    ...days.map((d) => groups.filter((g) => g.key.day === d).reduce((n, g) => n + g.total_tokens, 0)),
  );
  const width = Math.max(300, days.length * 48 + 60);
  const svg = s('svg', {
    class: 'chart',
    width,
    height: 220,
    viewBox: `0 0 ${width} 220`,
    role: 'img',
    'aria-label': 'Tokens per day and model',
  });
  days.forEach((day, i) => {
    let y = 190;
    for (const [m, model] of models.entries()) {
      const g = groups.find((x) => x.key.day === day && (x.key.model ?? 'unknown') === model);
      if (!g) continue;
      const height = (g.total_tokens / max) * 170;
      y -= height;
      add(
        svg,
        s(
          'rect',
          { x: 50 + i * 48, y, width: 36, height, fill: colours[m % colours.length] },
          s('title', {}, `${day} ${model}: ${g.total_tokens} tokens`),
        ),
      );
    }
    add(
      svg,
      s('text', { x: 68 + i * 48, y: 206, 'text-anchor': 'middle', class: 'axis' }, String(day).slice(5, 10)),
    );
  });
  add(
    svg,
    s('text', { x: 4, y: 24, class: 'axis' }, String(max)),
    s('text', { x: 4, y: 190, class: 'axis' }, '0'),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    models.map((m, i) => h('li', {}, h('span', { class: 'swatch', 'data-colour': i % colours.length }), m)),
  );
  return [svg, legend];
}

async function usage(params) {
  const since = params.get('since') ?? new Date(Date.now() - 30 * 86400e3).toISOString().slice(0, 10);
  const [byDay, byModel] = await Promise.all([
    api(`usage?group_by=day&group_by=model&since=${encodeURIComponent(since)}`),
    api(`usage?group_by=provider&group_by=model&since=${encodeURIComponent(since)}`),
  ]);
  const t = byModel.total;
  main.append(
    h('h1', {}, 'Usage and costs'),
    h(
      'p',
      { class: 'muted' },
      `since ${since}: ${t.calls} model calls, ${t.total_tokens} tokens, $${t.cost_usd.toFixed(4)}${t.unpriced_calls ? ` (${t.unpriced_calls} calls of unpriced models)` : ''}`,
    ),
    section(
      'Tokens per day',
      byDay.groups.length ? usageChart(byDay.groups) : h('p', { class: 'empty' }, 'No model calls yet.'),
    ),
    section(
      'Per model',
      table(
        ['Provider', 'Model', 'Calls', 'Prompt tokens', 'Completion tokens', 'Cost (USD)'],
        byModel.groups.map((g) => [
          g.key.provider ?? '',
          g.key.model ?? '',
          String(g.calls),
          String(g.prompt_tokens),
          String(g.completion_tokens),
          g.unpriced_calls === g.calls ? 'unpriced' : g.cost_usd.toFixed(4),
        ]),
        'No model calls yet.',
      ),
    ),
  );
}

// ---------------------------------------------------------------- keys and users

async function keys() {
  const rows = await api('keys');
  add(
    main,
    h('h1', {}, 'API keys'),
    table(
      ['Prefix', 'Name', 'Owner', 'Scopes', 'Expires', 'Revoked'],
      rows.map((k) => [
        k.prefix ?? k.key_prefix ?? '',
        k.name ?? '',
        k.owner_email ?? k.user_email ?? '',
        (k.scopes ?? []).join(', '),
        when(k.expires_at),
        k.revoked_at ? when(k.revoked_at) : 'no',
      ]),
      'No keys.',
    ),
    h(
      'p',
      { class: 'muted' },
      'Create and revoke keys with `factflow keys create` / `factflow keys revoke`.',
    ),
  );
}

async function users() {
  const rows = await api('users');
  add(
    main,
    h('h1', {}, 'Users'),
    table(
      ['Email', 'Role', 'Active', 'Created'],
      rows.map((u) => [u.email, u.role, u.is_active === false ? 'no' : 'yes', when(u.created_at)]),
      'No users.',
    ),
  );
}

// ---------------------------------------------------------------- session and routing

function signIn(reason) {
  const key = h('input', {
    id: 'api-key',
    type: 'password',
    size: 40,
    autocomplete: 'off',
    'aria-label': 'API key',
  });
  const email = h('input', { id: 'login-email', type: 'email', autocomplete: 'username', size: 30 });
  const password = h('input', {
    id: 'login-password',
    type: 'password',
    autocomplete: 'current-password',
    size: 30,
  });
  const problem = h('div', {});
  const withPassword = (session.features ?? []).includes('login');
  fill(
    main,
    h('h1', {}, 'Sign in'),
    reason ? h('p', { class: 'error', role: 'alert' }, reason) : null,
    problem,
    withPassword
      ? h(
          'form',
          {
            class: 'inline',
            'aria-label': 'Sign in with a password',
            onsubmit: async (e) => {
              e.preventDefault();
              try {
                // the session cookie and the CSRF cookie come back with the answer
                await api('auth/login', {
                  method: 'POST',
                  body: { email: email.value.trim(), password: password.value },
                });
                sessionStorage.removeItem(KEY_STORAGE);
                await loadSession();
                route();
              } catch (error) {
                fill(problem, errorBox(error));
              }
            },
          },
          h('label', { for: 'login-email' }, 'Email'),
          email,
          h('label', { for: 'login-password' }, 'Password'),
          password,
          h('button', { type: 'submit' }, 'Sign in with password'),
        )
      : null,
    h(
      'form',
      {
        class: 'inline',
        'aria-label': 'Sign in with an API key',
        onsubmit: async (e) => {
          e.preventDefault();
          sessionStorage.setItem(KEY_STORAGE, key.value.trim());
          await loadSession();
          route();
        },
      },
      h('label', { for: 'api-key' }, 'API key'),
      key,
      h('button', { type: 'submit' }, 'Sign in'),
    ),
    h('p', { class: 'muted' }, 'A key stays in this tab (sessionStorage) and is sent as X-API-Key.'),
  );
}

async function signOut() {
  if (session.principal?.kind === 'session') await api('auth/logout', { method: 'POST' }).catch(ignoreAbort);
  sessionStorage.removeItem(KEY_STORAGE);
  await loadSession();
  route();
}

async function loadSession() {
  const res = await fetch('/ui/session', { headers: headers('GET', true), credentials: 'same-origin' });
  session = await res.json();
  const who = document.getElementById('who');
  fill(
    who,
    session.auth === 'open'
      ? h(
          'span',
          { class: 'warn', title: 'no FACTFLOW_AUTH_SECRET: anyone who reaches this port can do anything' },
          'open mode',
        )
      : session.principal
        ? [
            h('span', {}, `${session.principal.name} (${session.principal.role ?? session.principal.kind})`),
            ' ',
            button('Sign out', signOut),
          ]
        : h('span', {}, 'signed out'),
  );
  const features = session.features ?? [];
  for (const item of document.querySelectorAll('#nav li')) {
    const needs = item.dataset.needs;
    const scope = item.dataset.scope;
    item.hidden = Boolean((needs && !features.includes(needs)) || (scope && !can(scope)));
  }
}

const PAGES = [
  [/^$/, overview],
  [/^configs$/, configs],
  [/^configs\/([^/]+)$/, (p, id) => configEditor(id)],
  [/^executions$/, executions],
  [/^executions\/([^/]+)$/, (p, id) => execution(id)],
  [/^lineage$/, lineage],
  [/^storage$/, storage],
  [/^deadletters$/, deadletters],
  [/^deadletters\/(\d+)$/, (p, id) => deadletter(id)],
  [/^search$/, search],
  [/^webhooks$/, webhooks],
  [/^webhooks\/([^/]+)$/, (p, id) => webhook(id, p)],
  [/^chat$/, chat],
  [/^usage$/, usage],
  [/^keys$/, keys],
  [/^users$/, users],
];

async function route() {
  if (current) {
    current.abort.abort();
    current.timers.forEach(clearInterval);
  }
  current = { abort: new AbortController(), timers: [] };
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, q] = hash.split('?');
  const params = new URLSearchParams(q ?? '');
  fill(main);
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(2);
    a.toggleAttribute('aria-current', target === path || (target && path.startsWith(`${target}/`)));
  }
  if (session.auth !== 'open' && !session.principal) return signIn(session.error);
  const found = PAGES.find(([pattern]) => pattern.test(path));
  if (!found) {
    add(main, h('h1', {}, 'Not found'), link('#/', 'Overview'));
    return;
  }
  const mine = current;
  try {
    await found[1](params, ...found[0].exec(path).slice(1));
  } catch (error) {
    if (error?.name === 'AbortError' || mine !== current) return;
    if (error instanceof ApiError && error.status === 401) return signIn(error.message);
    if (!main.querySelector('h1')) main.prepend(h('h1', {}, 'This page cannot be shown'));
    add(main, errorBox(error));
  }
}

window.addEventListener('hashchange', route);
loadSession().then(route);
