// inkwire admin dashboard: plain JS, no framework, no network access beyond this server's REST API.
// The API key lives in sessionStorage only (gone when the tab closes), is sent only as X-API-Key, and
// is never written to a URL, the console or the DOM. Everything from the server is inserted as text.
'use strict';

(() => {
  const KEY_STORAGE = 'inkwire.admin.apiKey';
  const METADATA_LIMIT = 4096; // bytes of compact JSON (docs/API.md, PATCH /api/v1/tunnels/{id})
  const $ = (id) => document.getElementById(id);

  // https://{public_host}/, plus the zone's port when it is not 443: the edge shares its TLS port
  // with the relay (PROTOCOL.md §8 A31), so a zone such as "127.0.0.1:8443" (a local stack) names
  // the public port too — the same rule as the agent's TunnelListener::public_url().
  function publicUrl(t) {
    const m = /^(?:\[[^\]]*\]|[^:[\]]+):(\d+)$/.exec(t.zone || '');
    const port = m && m[1] !== '443' ? `:${m[1]}` : '';
    return `https://${t.public_host}${port}/`;
  }

  const state = {
    tunnels: [],
    sortKey: 'created_at',
    sortDir: 1,
    filter: '',
    editing: null, // the tunnel in the edit dialog
  };

  // ---- API ------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  const apiKey = () => sessionStorage.getItem(KEY_STORAGE);

  // One REST call. A 401 signs out with the API's detail (a revoked key, or the wrong one).
  async function api(method, path, body, key = apiKey()) {
    const headers = { 'X-API-Key': key || '', Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'the server cannot be reached');
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const detail = data && typeof data.detail === 'string' ? data.detail : `HTTP ${res.status}`;
      if (res.status === 401 && key === apiKey() && apiKey()) signOut(detail);
      throw new ApiError(res.status, detail);
    }
    return data;
  }

  const tunnelPath = (t, suffix = '') => `/api/v1/tunnels/${encodeURIComponent(t.id)}${suffix}`;
  const describeError = (what, e) => (e instanceof ApiError
    ? `${what} failed: ${e.detail}${e.status ? ` (HTTP ${e.status})` : ''}`
    : `${what} failed: ${e.message}`);

  // ---- Sign in / out ----------------------------------------------------------------------------
  function showSignIn(message) {
    $('session').hidden = true;
    $('tunnels-view').hidden = true;
    $('signin-view').hidden = false;
    $('signin-error').textContent = message || '';
    $('signin-key').value = '';
    $('signin-key').focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    state.tunnels = [];
    $('tunnel-rows').replaceChildren();
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    showSignIn(message);
  }

  async function signIn(key) {
    // The key is checked before it is kept: a wrong one never reaches storage.
    const list = await api('GET', '/api/v1/tunnels/', undefined, key);
    sessionStorage.setItem(KEY_STORAGE, key);
    state.tunnels = list.tunnels || [];
    await showDashboard(false);
  }

  async function showDashboard(reload = true) {
    $('signin-view').hidden = true;
    $('tunnels-view').hidden = false;
    $('session').hidden = false;
    $('scope').textContent = 'checking key…';
    if (reload) await loadTunnels();
    else render();
    // The API tells a key's scope only by what it may do: listing API keys needs an admin key.
    try {
      await api('GET', '/api/v1/api-keys/');
      $('scope').textContent = 'admin key';
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) $('scope').textContent = 'member key (read only)';
      else if (apiKey()) $('scope').textContent = 'key scope unknown';
    }
  }

  // ---- Tunnels table ----------------------------------------------------------------------------
  async function loadTunnels() {
    try {
      const list = await api('GET', '/api/v1/tunnels/');
      state.tunnels = list.tunnels || [];
      $('tunnels-error').textContent = '';
      render();
    } catch (e) {
      if (apiKey()) $('tunnels-error').textContent = describeError('Loading tunnels', e);
    }
  }

  const formatTime = (iso) => {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  };

  function timeLeft(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    if (!(ms > 0)) return 'restore window over';
    const minutes = Math.floor(ms / 60000);
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return `${h > 0 ? `${h} h ` : ''}${m} min left to restore`;
  }

  const STATUS_TEXT = { active: 'active', awaiting_cert: 'awaiting certificate', delete_pending: 'pending removal', deleted: 'deleted' };

  function compare(a, b) {
    const k = state.sortKey;
    const x = a[k];
    const y = b[k];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1; // empty values last, whatever the direction
    if (y === null || y === undefined) return -1;
    if (typeof x === 'boolean') return (x === y ? 0 : x ? -1 : 1) * state.sortDir;
    return String(x).localeCompare(String(y)) * state.sortDir;
  }

  function cell(tr, label, ...content) {
    const td = document.createElement('td');
    td.dataset.label = label;
    for (const c of content) td.append(c);
    tr.append(td);
    return td;
  }

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function button(text, cls, onClick, describedBy) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    if (cls) b.className = cls;
    b.addEventListener('click', onClick);
    if (describedBy) b.title = describedBy;
    return b;
  }

  function render() {
    const rows = $('tunnel-rows');
    const needle = state.filter.trim().toLowerCase();
    const shown = state.tunnels.filter((t) => t.tunnel_name.toLowerCase().includes(needle)).sort(compare);
    const trs = shown.map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.name = t.tunnel_name;
      const name = document.createElement('strong');
      name.textContent = t.tunnel_name;
      const nameCell = cell(tr, 'Name', name);
      if (t.description) nameCell.append(span('sub', t.description));

      const url = publicUrl(t);
      const a = document.createElement('a');
      a.href = url;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      a.textContent = url;
      cell(tr, 'Public URL', a);
      cell(tr, 'TLS', t.tls_mode);

      const status = cell(tr, 'Status', span(`status-${t.status}`, STATUS_TEXT[t.status] || t.status));
      if (t.status === 'delete_pending' && t.restore_deadline_at) {
        const left = span('sub', timeLeft(t.restore_deadline_at));
        left.dataset.deadline = t.restore_deadline_at;
        status.append(left);
      }
      cell(tr, 'Connected', t.currently_connected ? 'yes' : 'no');
      const last = cell(tr, 'Last connected', formatTime(t.last_connected_at));
      if (t.last_connected_ip_addr) last.append(span('sub', `from ${t.last_connected_ip_addr}`));
      cell(tr, 'Created', formatTime(t.created_at));

      const actions = cell(tr, 'Actions');
      actions.classList.add('actions');
      actions.removeAttribute('data-label');
      const label = (verb) => `${verb} ${t.tunnel_name}`;
      const edit = button('Edit', 'secondary', () => openEdit(t));
      edit.setAttribute('aria-label', label('Edit'));
      const rotate = button('Rotate secret', 'secondary', () => rotateSecret(t));
      rotate.setAttribute('aria-label', label('Rotate the secret of'));
      actions.append(edit, rotate);
      if (t.status === 'delete_pending') {
        const restore = button('Restore', 'secondary', () => restoreTunnel(t));
        restore.setAttribute('aria-label', label('Restore'));
        actions.append(restore);
      } else {
        const del = button('Delete', 'danger', () => deleteTunnel(t));
        del.setAttribute('aria-label', label('Delete'));
        actions.append(del);
      }
      const force = button('Force delete', 'danger', () => forceDelete(t),
        'Finalises a tunnel that is pending removal at once and frees its name. Needs an admin key. '
        + 'A tunnel that is not pending removal must be deleted first (the server answers 409).');
      force.setAttribute('aria-label', label('Force-delete'));
      actions.append(force);
      return tr;
    });
    rows.replaceChildren(...trs);
    $('empty').hidden = shown.length > 0;
    $('empty').textContent = state.tunnels.length === 0 ? 'No tunnels yet.' : 'No tunnel matches the search.';
    // aria-sort tells assistive technology; the arrow (hidden from it) tells the eye.
    for (const th of document.querySelectorAll('#tunnels th[data-key]')) {
      const sorted = th.dataset.key === state.sortKey;
      if (sorted) th.setAttribute('aria-sort', state.sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
      th.querySelector('.arrow').textContent = sorted ? (state.sortDir > 0 ? ' ▲' : ' ▼') : '';
    }
  }

  // ---- Dialog helpers ---------------------------------------------------------------------------
  // confirm({title, text, note, ok, danger}) -> Promise<boolean>; with ok: null only a Close button.
  function confirmAction({ title, text, note = '', ok = 'OK', danger = false }) {
    const d = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-note').textContent = note;
    const okButton = $('confirm-ok');
    okButton.hidden = ok === null;
    okButton.textContent = ok || '';
    okButton.className = danger ? 'danger' : '';
    $('confirm-cancel').textContent = ok === null ? 'Close' : 'Cancel';
    d.returnValue = '';
    return new Promise((resolve) => {
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
      $('confirm-cancel').focus(); // the safe choice first
    });
  }

  function showSecret(tunnelName, secret, why) {
    $('secret-for').textContent = `${why} for tunnel “${tunnelName}”.`;
    $('secret-value').value = secret;
    $('secret-copied').textContent = '';
    $('secret-dialog').showModal();
    $('secret-value').select();
  }

  async function copySecret() {
    const input = $('secret-value');
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (e) {
      // Not a secure context (plain http on a non-loopback address): copy from the selection.
      input.select();
      document.execCommand('copy');
    }
    $('secret-copied').textContent = 'Copied to the clipboard.';
  }

  function notice(text) {
    $('notice').textContent = text;
    $('tunnels-error').textContent = '';
  }

  function failure(what, e) {
    if (!apiKey()) return; // a 401 already returned to the sign-in form
    $('notice').textContent = '';
    $('tunnels-error').textContent = describeError(what, e);
  }

  // ---- Actions ----------------------------------------------------------------------------------
  async function createTunnel(event) {
    event.preventDefault();
    const name = $('create-name').value.trim();
    const description = $('create-description').value.trim();
    $('create-error').textContent = '';
    if (!/^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/.test(name) || name.includes('--')) {
      $('create-error').textContent = 'The name must be 3–63 characters of a–z, 0–9 and “-”, '
        + 'start and end with a letter or digit, and not contain “--”.';
      $('create-name').focus();
      return;
    }
    const body = { tunnel_name: name, tls_mode: $('create-mode').value };
    if (description) body.description = description;
    try {
      const created = await api('POST', '/api/v1/tunnels/', body);
      $('create-dialog').close();
      notice(`Created tunnel ${name}.`);
      await loadTunnels();
      showSecret(name, created.connect_secret, 'The connect secret');
    } catch (e) {
      if (apiKey()) $('create-error').textContent = describeError('Create', e);
    }
  }

  // Compact JSON bytes of the metadata text, or an error message.
  function checkMetadata(text) {
    if (text.trim() === '') return { value: {}, bytes: 2 };
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return { error: `Not valid JSON: ${e.message}` };
    }
    if (value === null) value = {};
    if (typeof value !== 'object' || Array.isArray(value)) return { error: 'Metadata must be a JSON object ({…}).' };
    const bytes = new TextEncoder().encode(JSON.stringify(value)).length;
    if (bytes > METADATA_LIMIT) {
      return { value, bytes, error: `Metadata is ${bytes} bytes as compact JSON; the limit is ${METADATA_LIMIT} bytes.` };
    }
    return { value, bytes };
  }

  function updateMetadataCheck() {
    const r = checkMetadata($('edit-metadata').value);
    const size = $('edit-metadata-size');
    size.textContent = r.bytes === undefined ? `? of ${METADATA_LIMIT} bytes (compact JSON)`
      : `${r.bytes} of ${METADATA_LIMIT} bytes (compact JSON)`;
    size.classList.toggle('over', r.bytes > METADATA_LIMIT);
    $('edit-metadata-error').textContent = r.error || '';
    $('edit-metadata').setAttribute('aria-invalid', r.error ? 'true' : 'false');
    $('edit-save').disabled = Boolean(r.error);
    return r;
  }

  function openEdit(t) {
    state.editing = t;
    $('edit-title').textContent = `Edit ${t.tunnel_name}`;
    $('edit-description').value = t.description || '';
    $('edit-metadata').value = JSON.stringify(t.metadata || {}, null, 2);
    $('edit-error').textContent = '';
    updateMetadataCheck();
    $('edit-dialog').showModal();
    $('edit-description').focus();
  }

  async function saveEdit(event) {
    event.preventDefault();
    const t = state.editing;
    const r = updateMetadataCheck();
    if (!t || r.error) return;
    const description = $('edit-description').value;
    $('edit-error').textContent = '';
    try {
      await api('PATCH', tunnelPath(t), { description: description === '' ? null : description, metadata: r.value });
      $('edit-dialog').close();
      notice(`Saved ${t.tunnel_name}.`);
      await loadTunnels();
    } catch (e) {
      if (apiKey()) $('edit-error').textContent = describeError('Save', e); // e.g. the server's 422
    }
  }

  async function rotateSecret(t) {
    const ok = await confirmAction({
      title: `Rotate the secret of ${t.tunnel_name}?`,
      text: 'A new connect secret is made and shown once. The old one stops working for new agent '
        + 'connections; agents connected now keep serving until they reconnect.',
      ok: 'Rotate secret',
      danger: true,
    });
    if (!ok) return;
    try {
      const r = await api('POST', tunnelPath(t, '/rotate-secret'));
      notice(`Rotated the secret of ${t.tunnel_name}.`);
      showSecret(t.tunnel_name, r.connect_secret, 'The new connect secret');
    } catch (e) {
      failure('Rotate secret', e);
    }
  }

  async function deleteTunnel(t) {
    const ok = await confirmAction({
      title: `Delete ${t.tunnel_name}?`,
      text: 'The tunnel stops serving at once and its agents are disconnected. It can be restored for '
        + '24 hours; after that it is removed and its name is freed.',
      ok: 'Delete',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', tunnelPath(t));
      notice(`Deleted ${t.tunnel_name}; it can be restored for 24 hours.`);
      await loadTunnels();
    } catch (e) {
      failure('Delete', e);
    }
  }

  async function restoreTunnel(t) {
    const ok = await confirmAction({
      title: `Restore ${t.tunnel_name}?`,
      text: 'The tunnel leaves the pending-removal state and agents may connect again.',
      ok: 'Restore',
    });
    if (!ok) return;
    try {
      await api('POST', tunnelPath(t, '/restore'));
      notice(`Restored ${t.tunnel_name}.`);
      await loadTunnels();
    } catch (e) {
      failure('Restore', e);
    }
  }

  async function forceDelete(t) {
    if (t.status !== 'delete_pending') {
      // The server would answer 409: say why instead of sending a request bound to fail.
      await confirmAction({
        title: `${t.tunnel_name} is not pending removal`,
        text: 'Force-delete only finalises a tunnel that was deleted and is waiting out its 24-hour '
          + 'restore window (otherwise the server answers 409 “not in delete_pending state”). Delete it first.',
        note: 'Force-delete needs an admin key.',
        ok: null,
      });
      return;
    }
    const ok = await confirmAction({
      title: `Force-delete ${t.tunnel_name}?`,
      text: 'The tunnel is removed now, without waiting for the restore window; it cannot be restored, '
        + 'and its name becomes free for anyone.',
      note: 'Needs an admin key: a member key is refused (403).',
      ok: 'Force delete',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', tunnelPath(t, '/force'));
      notice(`Force-deleted ${t.tunnel_name}.`);
      await loadTunnels();
    } catch (e) {
      failure('Force delete', e);
    }
  }

  // ---- Wiring -----------------------------------------------------------------------------------
  function init() {
    $('signin-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const key = $('signin-key').value.trim();
      if (!key) {
        $('signin-error').textContent = 'Enter an API key.';
        return;
      }
      $('signin-error').textContent = '';
      try {
        await signIn(key);
        $('signin-key').value = '';
        $('main').focus();
      } catch (e) {
        $('signin-error').textContent = describeError('Sign in', e);
      }
    });
    $('signout').addEventListener('click', () => signOut(''));
    $('refresh').addEventListener('click', () => {
      notice('');
      loadTunnels();
    });
    $('search').addEventListener('input', (e) => {
      state.filter = e.target.value;
      render();
    });
    for (const th of document.querySelectorAll('#tunnels th[data-key]')) {
      th.querySelector('button').addEventListener('click', () => {
        if (state.sortKey === th.dataset.key) state.sortDir = -state.sortDir;
        else {
          state.sortKey = th.dataset.key;
          state.sortDir = 1;
        }
        render();
      });
    }
    $('create-open').addEventListener('click', () => {
      $('create-form').reset();
      $('create-error').textContent = '';
      $('create-dialog').showModal();
      $('create-name').focus();
    });
    $('create-form').addEventListener('submit', createTunnel);
    $('edit-form').addEventListener('submit', saveEdit);
    $('edit-metadata').addEventListener('input', updateMetadataCheck);
    $('secret-copy').addEventListener('click', copySecret);
    // Shown once: the secret leaves the page when its dialog closes.
    $('secret-dialog').addEventListener('close', () => {
      $('secret-value').value = '';
      $('secret-copied').textContent = '';
    });
    for (const b of document.querySelectorAll('[data-close]')) {
      b.addEventListener('click', () => b.closest('dialog').close());
    }
    // The time left to restore moves on by itself (only those texts change, so focus stays put).
    setInterval(() => {
      for (const s of document.querySelectorAll('[data-deadline]')) s.textContent = timeLeft(s.dataset.deadline);
    }, 30000);

    if (apiKey()) showDashboard(true);
    else showSignIn('');
  }

  document.addEventListener('DOMContentLoaded', init);
})();

