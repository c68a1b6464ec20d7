// ui_check.mjs: the dashboard in headless Chromium against a real embedd
// serve and gemini-sim (tests/ui/run.sh starts them). Checks: the page loads
// with no console error and no Content-Security-Policy violation; a job
// created through the API appears and its bar reaches 100% without a reload;
// a job is cancelled from the page; its batches are listed; a 320 px wide
// viewport has no horizontal overflow. Prints one line per check and exits
// non-zero on any failure. Env: EMBEDD_URL, SIM_URL, EMBEDD_KEY, CHROMIUM,
// SCREENSHOT.
import { chromium } from 'playwright-core';

const base = process.env.EMBEDD_URL;
const sim = process.env.SIM_URL;
const key = process.env.EMBEDD_KEY;
let failures = 0;
function check(cond, what, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 400) : ''}`);
  if (!cond) failures++;
}

async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function simConfig(cfg) {
  const r = await fetch(sim + '/_sim/config', { method: 'PUT', body: JSON.stringify(cfg) });
  if (!r.ok) throw new Error('PUT /_sim/config: ' + r.status);
}

function job(name, docs, words) {
  const documents = [];
  for (let i = 0; i < docs; i++) {
    const text = Array.from({ length: words }, (_, k) => `${name} document ${i} sentence ${k} about embeddings.`).join(' ');
    documents.push({ id: `${name}-${i}`, text });
  }
  return { display_name: name, output_dimensionality: 256, documents };
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.type() + ': ' + m.text()); });
page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
await page.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
});

try {
  // the page and its headers
  const resp = await page.goto(base + '/');
  check(resp.status() === 200, 'GET / answers 200', resp.status());
  const csp = resp.headers()['content-security-policy'] || '';
  check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp),
    'a strict Content-Security-Policy', csp);
  await page.waitForSelector('#login:not([hidden])');
  check(true, 'asks for an API key');

  // the key goes to sessionStorage, never into a URL
  await page.fill('#key', key);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#list:not([hidden])');
  const stored = await page.evaluate(() => sessionStorage.getItem('embedd.key'));
  check(stored === key, 'the key is kept in sessionStorage');
  check(!page.url().includes(key), 'the key is not in the URL', page.url());
  await page.evaluate(() => { window.__sameDocument = true; });

  // a job created through the API appears and reaches 100% without a reload
  const a = await api('POST', '/v1/jobs', job('support-articles', 12, 6));
  const rowA = `li.job[data-id="${a.id}"]`;
  await page.waitForSelector(rowA, { timeout: 15000 });
  check(true, 'a job created through the API appears in the list');
  await page.waitForSelector(`${rowA} .bar[aria-valuenow="100"]`, { timeout: 45000 });
  check(true, "the job's bar reaches 100%");
  await page.waitForSelector(`${rowA}[data-state="succeeded"]`, { timeout: 10000 });
  check(true, 'the job shows succeeded');
  check(await page.evaluate(() => window.__sameDocument === true), 'without a reload');
  const okWidth = await page.$eval(`${rowA} .bar .ok`, (e) => e.style.width);
  check(okWidth === '100%', 'the succeeded part fills the bar', okWidth);

  // its batches
  await page.click(rowA);
  await page.waitForSelector('#detail:not([hidden])');
  await page.waitForSelector('#batches tbody tr[data-state="succeeded"]', { timeout: 10000 });
  const batchRows = await page.$$eval('#batches tbody tr', (rs) => rs.length);
  check(batchRows >= 1, 'the job view lists its batches', batchRows);
  const noCancel = await page.$('#cancel');
  check(noCancel === null, 'a finished job offers no cancel');

  // a job whose batches stay pending at Google is cancelled from the page
  await simConfig({ pending_ms: 600000 });
  const b = await api('POST', '/v1/jobs', job('legal-archive', 6, 4));
  await page.click('a.back');
  await page.waitForSelector(`li.job[data-id="${b.id}"]`, { timeout: 15000 });
  await page.click(`li.job[data-id="${b.id}"]`);
  await page.waitForSelector(`#job[data-id="${b.id}"] #cancel`, { timeout: 10000 });
  await page.click('#cancel');
  await page.waitForSelector('#cancel.armed');
  await page.click('#cancel');
  await page.waitForSelector(`#job[data-id="${b.id}"][data-state="cancelled"]`, { timeout: 15000 });
  const after = await api('GET', `/v1/jobs/${b.id}`);
  check(after.state === 'cancelled', 'cancel from the page cancels the job', after.state);
  await simConfig({ pending_ms: 1500 });

  // 320 px: nothing overflows sideways, in the job view and in the list
  await page.setViewportSize({ width: 320, height: 700 });
  await page.waitForTimeout(300); // layout settles (a frame or two)
  let overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, 'no horizontal overflow at 320 px (job view)', overflow);
  await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-320-job.png'), fullPage: true });
  await page.click('a.back');
  await page.waitForSelector('#list:not([hidden])');
  await page.waitForTimeout(300);
  overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, 'no horizontal overflow at 320 px (list)', overflow);
  await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-320.png'), fullPage: true });

  // a job in progress for the screenshot, at desktop width
  await page.setViewportSize({ width: 1100, height: 470 });
  const c = await api('POST', '/v1/jobs', job('product-catalog', 48, 8));
  // (embedd runs with --max-open-batches=2: its batches go two at a time)
  await page.waitForFunction((id) => {
    const v = Number(document.querySelector(`li.job[data-id="${id}"] .bar`)?.getAttribute('aria-valuenow'));
    return v > 0 && v < 100;
  }, c.id, { timeout: 30000 });
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  check(true, 'screenshot written to ' + process.env.SCREENSHOT);
  await page.waitForSelector(`li.job[data-id="${c.id}"][data-state="succeeded"]`, { timeout: 60000 });

  // the key survives a reload of the tab
  await page.reload();
  await page.waitForSelector(`li.job[data-id="${a.id}"]`, { timeout: 15000 });
  check(true, 'a reload keeps the key (sessionStorage)');

  const csps = await page.evaluate(() => window.__csp);
  check(csps.length === 0, 'no Content-Security-Policy violation', csps);
  check(consoleErrors.length === 0, 'no console error or warning', consoleErrors);
} catch (e) {
  check(false, 'the run', String(e && e.stack || e));
  try { await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-failure.png'), fullPage: true }); } catch (_) { /* best effort */ }
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
