// The admin dashboard (/admin/) in Debian's Chromium, headless, driven by playwright-core.
// Run by tests/e2e/admin_e2e.sh, which starts inkwired and passes BASE_URL, ADMIN_KEY, MEMBER_KEY,
// CHROMIUM and SCREENSHOT_DIR in the environment. Each step prints PASS or FAIL; the first failure
// ends the run with exit 1. Any console error, page error, CSP violation or request leaving
// BASE_URL fails the run, except the HTTP error answers a step announces it expects (Chromium logs
// each 4xx fetch as a console error).
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE = process.env.BASE_URL;
const ADMIN_KEY = process.env.ADMIN_KEY;
const MEMBER_KEY = process.env.MEMBER_KEY;
const SHOTS = process.env.SCREENSHOT_DIR;
for (const [k, v] of Object.entries({ BASE_URL: BASE, ADMIN_KEY, MEMBER_KEY, SCREENSHOT_DIR: SHOTS })) {
  if (!v) throw new Error(`${k} is not set`);
}

const problems = []; // console errors, page errors, outside requests
let expected = new Set(); // HTTP statuses the current step provokes on purpose
let currentPage = null; // for the accessibility tree printed when a step fails
const started = Date.now();
const log = (s) => console.log(`[${String(Math.round((Date.now() - started) / 1000)).padStart(3)}s] ${s}`);

async function step(title, statuses, fn) {
  expected = new Set(statuses);
  const before = problems.length;
  try {
    await fn();
    if (problems.length > before) throw new Error(problems.slice(before).join('; '));
    log(`PASS ${title}`);
  } catch (e) {
    log(`FAIL ${title}: ${e.message.split('\n').slice(0, 6).join(' | ')}`);
    if (currentPage) {
      const tree = await currentPage.locator('body').ariaSnapshot().catch(() => '(none)');
      console.log(`----- the page's accessibility tree -----\n${tree.slice(0, 6000)}`);
    }
    throw e;
  } finally {
    expected = new Set();
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `admin-${name}.png`), fullPage: true });
}

// ---- The served assets, with plain HTTP (what curl would see) -----------------------------------
async function checkAssets() {
  let total = 0;
  const want = { '/admin/': 'text/html', '/admin': 'text/html', '/admin/app.js': 'text/javascript', '/admin/app.css': 'text/css' };
  for (const [p, type] of Object.entries(want)) {
    const res = await fetch(BASE + p);
    assert.equal(res.status, 200, `${p} status`);
    assert.ok(res.headers.get('content-type').startsWith(type), `${p} content-type ${res.headers.get('content-type')}`);
    assert.equal(res.headers.get('cache-control'), 'no-cache', `${p} cache-control`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${p} nosniff`);
    assert.match(res.headers.get('content-security-policy') || '', /^default-src 'self'/, `${p} CSP`);
    const body = await res.text();
    if (p !== '/admin') total += Buffer.byteLength(body);
    assert.doesNotMatch(body, /https?:\/\/(?!127\.0\.0\.1)[a-z]/i, `${p} refers to another origin`);
  }
  assert.ok(total < 200 * 1024, `the page weighs ${total} bytes`);
  for (const p of ['/admin/nope.js', '/admin/x/app.js', '/admin/README.md', '/admin/..%2Fapp.js']) {
    const res = await fetch(BASE + p);
    assert.equal(res.status, 404, `${p} status`);
  }
  const post = await fetch(`${BASE}/admin/`, { method: 'POST' });
  assert.equal(post.status, 405, 'POST /admin/');
  log(`assets: ${total} bytes in all`);
}

// ---- Page helpers ------------------------------------------------------------------------------
const row = (page, name) => page.locator(`#tunnel-rows tr[data-name="${name}"]`);
const rowNames = (page) => page.locator('#tunnel-rows tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.name));

async function signIn(page, key) {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function confirm(page, okName) {
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByRole('button', { name: okName, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
}

async function createTunnel(page, name, description) {
  await page.getByRole('button', { name: 'New tunnel' }).click();
  const d = page.locator('#create-dialog');
  await d.getByLabel('Name').fill(name);
  if (description) await d.getByLabel('Description (optional)').fill(description);
  await d.getByRole('button', { name: 'Create' }).click();
  const secretDialog = page.locator('#secret-dialog');
  await secretDialog.waitFor({ state: 'visible' });
  return secretDialog.getByLabel('Connect secret').inputValue();
}

async function closeSecret(page) {
  await page.getByRole('button', { name: 'I have stored it' }).click();
  await page.locator('#secret-dialog').waitFor({ state: 'hidden' });
}

// ---- The run -----------------------------------------------------------------------------------
async function main() {
  await step('assets: types, headers, 404s, size', [], checkAssets);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    // Off the network: nothing but 127.0.0.1 resolves, and no background services start.
    args: [
      '--no-sandbox',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--no-proxy-server',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-domain-reliability',
      '--disable-sync',
      '--no-pings',
      '--no-first-run',
      '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'en-GB', timezoneId: 'UTC' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  // Every request must stay on the server under test.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${BASE}/`)) return route.continue();
    problems.push(`request outside the server: ${url}`);
    return route.abort();
  });
  const page = await context.newPage();
  currentPage = page;
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const m = /status of (\d{3})/.exec(msg.text());
    if (m && expected.has(Number(m[1]))) return;
    problems.push(`console error: ${msg.text()}`);
  });
  // Keys must never travel in a URL.
  page.on('request', (req) => {
    for (const k of [ADMIN_KEY, MEMBER_KEY]) {
      if (req.url().includes(k.split('.')[1])) problems.push(`a key in a URL: ${req.url()}`);
    }
  });

  try {
    await step('sign-in page renders offline with its labels', [], async () => {
      await page.goto(`${BASE}/admin/`);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.equal(await page.getByLabel('API key').getAttribute('type'), 'password');
      await shot(page, 'signin');
    });

    await step('a wrong key is refused with the API detail', [401], async () => {
      await signIn(page, 'ApiKey_00000000-0000-4000-8000-000000000000.wrong');
      await page.locator('#signin-error').filter({ hasText: /Sign in failed: .+\(HTTP 401\)/ }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
    });

    let firstSecret;
    await step('admin signs in; the key is in sessionStorage only', [], async () => {
      await signIn(page, ADMIN_KEY);
      await page.getByRole('heading', { name: 'Tunnels' }).waitFor();
      await page.locator('#scope').filter({ hasText: 'admin key' }).waitFor();
      const stored = await page.evaluate(() => ({
        session: Object.values(sessionStorage), local: localStorage.length, cookies: document.cookie, url: location.href,
      }));
      assert.deepEqual(stored.session, [ADMIN_KEY]);
      assert.equal(stored.local, 0);
      assert.equal(stored.cookies, '');
      assert.ok(!stored.url.includes(ADMIN_KEY.split('.')[1]));
      assert.equal(await page.getByLabel('API key').inputValue(), '', 'the sign-in field is emptied');
    });

    await step('create: the connect secret is shown once, with copy and warning', [], async () => {
      firstSecret = await createTunnel(page, 'alpha', 'first tunnel');
      assert.match(firstSecret, /^tsec_/);
      await page.locator('#secret-dialog').getByText('cannot be shown again').waitFor();
      await page.getByRole('button', { name: 'Copy' }).click();
      await page.getByText('Copied to the clipboard.').waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), firstSecret);
      await shot(page, 'secret');
      await closeSecret(page);
      assert.equal(await page.locator('#secret-value').inputValue(), '', 'the secret leaves the page');
      assert.ok(!(await page.content()).includes(firstSecret), 'the secret is nowhere in the page');
      await row(page, 'alpha').waitFor();
      // The page reloads from the API: the list never carries a secret.
      await page.reload();
      await row(page, 'alpha').waitFor();
      assert.ok(!(await page.content()).includes(firstSecret), 'the secret is not shown again');
    });

    await step('table: columns, search and sort', [], async () => {
      await closeSecretAfter(page, createTunnel(page, 'beta-web'));
      await closeSecretAfter(page, createTunnel(page, 'gamma'));
      const alpha = row(page, 'alpha');
      for (const text of [`https://alpha.admin.test:${process.env.HTTPS_PORT}/`, 'edge', 'active', 'no', 'first tunnel']) {
        await alpha.getByText(text, { exact: true }).first().waitFor();
      }
      assert.deepEqual(await rowNames(page), ['alpha', 'beta-web', 'gamma'], 'created order');
      await page.getByRole('button', { name: 'Name', exact: true }).click();
      assert.deepEqual(await rowNames(page), ['alpha', 'beta-web', 'gamma']);
      assert.equal(await page.locator('th[data-key="tunnel_name"]').getAttribute('aria-sort'), 'ascending');
      await page.getByRole('button', { name: 'Name', exact: true }).click();
      assert.deepEqual(await rowNames(page), ['gamma', 'beta-web', 'alpha']);
      await page.getByLabel('Search by name').fill('et');
      assert.deepEqual(await rowNames(page), ['beta-web']);
      await page.getByLabel('Search by name').fill('zzz');
      await page.getByText('No tunnel matches the search.').waitFor();
      await page.getByLabel('Search by name').fill('');
      await page.getByRole('button', { name: 'Created', exact: true }).click();
      assert.deepEqual(await rowNames(page), ['alpha', 'beta-web', 'gamma']);
      await shot(page, 'tunnels');
    });

    await step('edit description and metadata; past 4 KB is refused before sending', [], async () => {
      await row(page, 'alpha').getByRole('button', { name: 'Edit alpha', exact: true }).click();
      const d = page.locator('#edit-dialog');
      await d.getByLabel('Description').fill('ops demo');
      await d.getByLabel('Metadata (a JSON object)').fill('{"owner": "ops", "ticket": 42}');
      await d.getByText('27 of 4096 bytes').waitFor();
      await d.getByLabel('Metadata (a JSON object)').fill('{"owner": ');
      await d.getByText(/Not valid JSON/).waitFor();
      assert.ok(await d.getByRole('button', { name: 'Save' }).isDisabled());
      await d.getByLabel('Metadata (a JSON object)').fill('[1, 2]');
      await d.getByText('Metadata must be a JSON object').waitFor();
      await d.getByLabel('Metadata (a JSON object)').fill(JSON.stringify({ blob: 'x'.repeat(4200) }));
      await d.getByText('Metadata is 4211 bytes as compact JSON; the limit is 4096 bytes.').waitFor();
      await d.getByText('4211 of 4096 bytes').waitFor();
      assert.ok(await d.getByRole('button', { name: 'Save' }).isDisabled(), 'Save is off past the limit');
      await shot(page, 'edit-metadata');
      await d.getByLabel('Metadata (a JSON object)').fill('{"owner": "ops", "ticket": 42}');
      await d.getByRole('button', { name: 'Save' }).click();
      await d.waitFor({ state: 'hidden' });
      await row(page, 'alpha').getByText('ops demo').waitFor();
      const res = await fetch(`${BASE}/api/v1/tunnels/`, { headers: { 'X-API-Key': ADMIN_KEY } });
      const alpha = (await res.json()).tunnels.find((t) => t.tunnel_name === 'alpha');
      assert.deepEqual(alpha.metadata, { owner: 'ops', ticket: 42 });
      assert.equal(alpha.description, 'ops demo');
    });

    await step('rotate secret: a new one, shown once', [], async () => {
      await row(page, 'alpha').getByRole('button', { name: 'Rotate the secret of alpha', exact: true }).click();
      await confirm(page, 'Rotate secret');
      await page.locator('#secret-dialog').waitFor({ state: 'visible' });
      const second = await page.locator('#secret-value').inputValue();
      assert.match(second, /^tsec_/);
      assert.notEqual(second, firstSecret);
      await closeSecret(page);
    });

    await step('delete, then restore within the window', [], async () => {
      await row(page, 'alpha').getByRole('button', { name: 'Delete alpha', exact: true }).click();
      await confirm(page, 'Delete');
      await row(page, 'alpha').getByText('pending removal').waitFor();
      await row(page, 'alpha').getByText(/^(23 h 5\d|24 h 0) min left to restore$/).waitFor();
      await shot(page, 'pending');
      await row(page, 'alpha').getByRole('button', { name: 'Restore alpha', exact: true }).click();
      await confirm(page, 'Restore');
      await row(page, 'alpha').getByText('active', { exact: true }).waitFor();
      await page.getByText('Restored alpha.').waitFor();
    });

    await step('force-delete of a tunnel not pending removal is explained, not sent', [], async () => {
      await row(page, 'alpha').getByRole('button', { name: 'Force-delete alpha', exact: true }).click();
      const d = page.locator('#confirm-dialog');
      await d.getByText(/answers 409/).waitFor();
      await d.getByText('Force-delete needs an admin key.').waitFor();
      assert.ok(await d.getByRole('button', { name: 'Force delete' }).isHidden());
      await d.getByRole('button', { name: 'Close' }).click();
      await row(page, 'alpha').getByText('active', { exact: true }).waitFor();
    });

    await step('delete beta-web and gamma (pending), sign out', [], async () => {
      for (const name of ['beta-web', 'gamma']) {
        await row(page, name).getByRole('button', { name: `Delete ${name}`, exact: true }).click();
        await confirm(page, 'Delete');
        await row(page, name).getByText('pending removal').waitFor();
      }
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign out clears the key');
    });

    await step('a member key is refused force-delete and edit, with the API detail', [403], async () => {
      await signIn(page, MEMBER_KEY);
      await page.locator('#scope').filter({ hasText: 'member key (read only)' }).waitFor();
      await row(page, 'beta-web').getByRole('button', { name: 'Force-delete beta-web', exact: true }).click();
      await confirm(page, 'Force delete');
      await page.locator('#tunnels-error').filter({ hasText: /^Force delete failed: .*admin.*\(HTTP 403\)$/ }).waitFor();
      await row(page, 'beta-web').getByText('pending removal').waitFor();
      await shot(page, 'member-refused');
      await row(page, 'alpha').getByRole('button', { name: 'Edit alpha', exact: true }).click();
      await page.locator('#edit-dialog').getByRole('button', { name: 'Save' }).click();
      await page.locator('#edit-error').filter({ hasText: /^Save failed: .+\(HTTP 403\)$/ }).waitFor();
      await page.locator('#edit-dialog').getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('button', { name: 'Sign out' }).click();
    });

    await step('an admin force-deletes a pending tunnel', [], async () => {
      await signIn(page, ADMIN_KEY);
      await page.locator('#scope').filter({ hasText: 'admin key' }).waitFor();
      await row(page, 'beta-web').getByRole('button', { name: 'Force-delete beta-web', exact: true }).click();
      await confirm(page, 'Force delete');
      await page.getByText('Force-deleted beta-web.').waitFor();
      await row(page, 'beta-web').waitFor({ state: 'detached' });
      assert.deepEqual(await rowNames(page), ['alpha', 'gamma']);
    });

    await step('keyboard: buttons reachable by Tab with a visible focus ring', [], async () => {
      await page.getByLabel('Search by name').focus();
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return { tag: el.tagName, text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth };
      });
      assert.equal(focused.tag, 'BUTTON');
      assert.equal(focused.text, 'Refresh');
      assert.notEqual(focused.outline, 'none');
      await page.keyboard.press('Enter');
      await row(page, 'alpha').waitFor();
      // Every form control has a label.
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.labels.length === 0).map((el) => el.id));
      assert.deepEqual(unlabelled, []);
    });

    await step('phone width (360 px): no sideways scrolling', [], async () => {
      await page.setViewportSize({ width: 360, height: 780 });
      await row(page, 'alpha').waitFor();
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `the page is ${width} px wide`);
      await shot(page, 'phone');
      await page.setViewportSize({ width: 1280, height: 820 });
    });

    await step('a 401 (the key stopped working) returns to sign-in with the detail', [401], async () => {
      await page.evaluate(() => sessionStorage.setItem('inkwire.admin.apiKey',
        'ApiKey_00000000-0000-4000-8000-000000000000.revoked'));
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.locator('#signin-error').filter({ hasText: /.+/ }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    });
  } finally {
    await browser.close();
  }
  log(`admin dashboard: all steps passed in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function closeSecretAfter(page, created) {
  await created;
  await closeSecret(page);
}

main().catch((e) => {
  console.log(`admin dashboard: FAIL: ${e.message.split('\n')[0]}`);
  process.exitCode = 1;
});
