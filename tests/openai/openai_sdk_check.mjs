// openai_sdk_check.mjs: drive embedd's /openai/v1 surface with OpenAI's
// official JavaScript SDK (the `openai` npm package), unchanged but for its
// base URL and key: embeddings (base64, as the SDK asks by default, and
// float), task suffixes, a collection as the model, reuse from storage,
// files and batches end to end (3 and 2,000 lines, every vector checked
// against gemini-sim's deterministic function), the upload limit, cancel, list paging, an
// invalid batch file, and the SDK's exceptions for a wrong key and a
// missing batch.
// Usage (tests/openai/run.sh sets these): EMBEDD_URL, EMBEDD_KEY, SIM_URL.
// Exits non-zero on any mismatch; prints one line per check.
import OpenAI, { toFile } from 'openai';

const E = process.env.EMBEDD_URL;
const KEY = process.env.EMBEDD_KEY;
const SIM = process.env.SIM_URL;
const client = new OpenAI({ apiKey: KEY, baseURL: `${E}/openai/v1`, maxRetries: 0, timeout: 60000 });
const MODEL = 'gemini-embedding-001';
let failures = 0;
function check(cond, what, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 400) : ''}`);
  if (!cond) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- gemini-sim's vector function (tools/gemini-sim/vector.c), recomputed ----
// 64-bit arithmetic on [hi, lo] pairs of uint32 (BigInt is ~50x slower, and
// a 2,000-line batch needs 6 million steps); fnv1aBig below checks it.
function mul64(ah, al, bh, bl) {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const mid = a0 * b1 + a1 * b0;
  const lo = a0 * b0 + (mid % 65536) * 65536;
  const hi = a1 * b1 + Math.floor(mid / 65536) + Math.floor(lo / 4294967296);
  return [(hi + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0, lo >>> 0];
}
function add64(ah, al, bh, bl) {
  const lo = al + bl;
  return [(ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0, lo >>> 0];
}
function xorShr(h, l, s) { // x ^ (x >> s), 0 < s < 32
  return [(h ^ (h >>> s)) >>> 0, (l ^ ((l >>> s) | (h << (32 - s)))) >>> 0];
}
function fnv1a(hl, bytes) {
  let [h, l] = hl;
  for (const b of bytes) [h, l] = mul64(h, (l ^ b) >>> 0, 0x100, 0x1b3);
  return [h, l];
}
const M64 = (1n << 64n) - 1n;
function fnv1aBig(h, bytes) {
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h;
}
function simVector(model, task, text, dims, normalize) {
  const enc = new TextEncoder();
  let hl = [0xcbf29ce4, 0x84222325];
  hl = fnv1a(hl, enc.encode(model));
  hl = fnv1a(hl, [0]);
  hl = fnv1a(hl, enc.encode(task));
  hl = fnv1a(hl, [0]);
  hl = fnv1a(hl, enc.encode(text));
  const native = 3072;
  const v = new Float64Array(native);
  let [sh, sl] = hl, sum = 0;
  for (let i = 0; i < native; i++) {
    [sh, sl] = add64(sh, sl, 0x9e3779b9, 0x7f4a7c15);
    let [h, l] = xorShr(sh, sl, 30);
    [h, l] = mul64(h, l, 0xbf58476d, 0x1ce4e5b9);
    [h, l] = xorShr(h, l, 27);
    [h, l] = mul64(h, l, 0x94d049bb, 0x133111eb);
    [h, l] = xorShr(h, l, 31);
    v[i] = (h * 2097152 + (l >>> 11)) * 2 ** -53 * 2 - 1; // (z >> 11) * 2^-53 * 2 - 1
    sum += v[i] * v[i];
  }
  const norm = Math.sqrt(sum);
  const e = new Float32Array(dims);
  for (let i = 0; i < dims; i++) e[i] = Math.fround(v[i] / norm);
  if (!normalize || dims >= native) return e;
  let s = 0;
  for (let i = 0; i < dims; i++) s += e[i] * e[i];
  const n2 = Math.sqrt(s);
  const r = new Float32Array(dims);
  for (let i = 0; i < dims; i++) r[i] = Math.fround(e[i] / n2);
  return r;
}
{
  const bytes = new TextEncoder().encode('gemini-embedding-001\0RETRIEVAL_QUERY\0check ü');
  const [h, l] = fnv1a([0xcbf29ce4, 0x84222325], bytes);
  check(((BigInt(h) << 32n) | BigInt(l)) === fnv1aBig(0xcbf29ce484222325n, bytes), 'the test\'s 64-bit arithmetic agrees with BigInt');
}
// Exact float32 equality (a float array is parsed from the shortest decimal, which round-trips).
function sameVector(got, want) {
  if (!got || got.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (Math.fround(got[i]) !== want[i]) return false;
  return true;
}
function decodeB64(s) {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}
async function simStats() {
  return (await fetch(`${SIM}/_sim/stats`)).json();
}
async function simConfig(cfg) {
  const r = await fetch(`${SIM}/_sim/config`, { method: 'PUT', body: JSON.stringify(cfg) });
  if (!r.ok) throw new Error(`sim config: ${r.status}`);
}
async function embedd(method, path, body) {
  const r = await fetch(`${E}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: await r.json() };
}
async function expectError(promise, cls, what, test) {
  try {
    await promise;
    check(false, what, 'no exception');
  } catch (e) {
    check(e instanceof cls && (!test || test(e)), what, { name: e?.constructor?.name, status: e?.status, message: e?.message });
  }
}

// ---- embeddings ----
{
  const texts = ['the quick brown fox', 'jumps over the lazy dog'];
  const base = await client.embeddings.create({ model: MODEL, input: texts, dimensions: 256 });
  check(base.object === 'list' && base.data.length === 2 && base.model === MODEL, 'embeddings: list of 2, model echoed', base.model);
  check(base.data.every((d, i) => d.object === 'embedding' && d.index === i), 'embeddings: data[i] is {object: embedding, index: i}');
  check(base.data.every((d, i) => sameVector(d.embedding, simVector(MODEL, 'RETRIEVAL_QUERY', texts[i], 256, true))),
    'embeddings without encoding_format (the SDK asks base64): the simulator\'s vectors, unit length');
  check(base.usage.prompt_tokens > 0 && base.usage.total_tokens === base.usage.prompt_tokens, 'embeddings: usage counts tokens', base.usage);
  const flt = await client.embeddings.create({ model: MODEL, input: texts, dimensions: 256, encoding_format: 'float' });
  check(Array.isArray(flt.data[0].embedding) && flt.data.every((d, i) => sameVector(d.embedding, simVector(MODEL, 'RETRIEVAL_QUERY', texts[i], 256, true))),
    'embeddings with encoding_format float: the same vectors as JSON numbers');
  const b64 = await client.embeddings.create({ model: MODEL, input: texts[0], dimensions: 256, encoding_format: 'base64' });
  check(typeof b64.data[0].embedding === 'string' && sameVector(decodeB64(b64.data[0].embedding), simVector(MODEL, 'RETRIEVAL_QUERY', texts[0], 256, true)),
    'embeddings with encoding_format base64: float32 little-endian in base64');
  const dflt = await client.embeddings.create({ model: MODEL, input: 'default dimensions', encoding_format: 'float' });
  check(dflt.data[0].embedding.length === 768, 'embeddings: gemini-embedding-001 defaults to 768 dimensions', dflt.data[0].embedding.length);
  const full = await client.embeddings.create({ model: MODEL, input: 'native size', dimensions: 3072, encoding_format: 'float' });
  check(sameVector(full.data[0].embedding, simVector(MODEL, 'RETRIEVAL_QUERY', 'native size', 3072, true)), 'embeddings: 3072 dimensions as Google returns them');

  // the task type: a suffix on the model name
  const doc = await client.embeddings.create({ model: `${MODEL}:document`, input: texts[0], dimensions: 128 });
  check(sameVector(doc.data[0].embedding, simVector(MODEL, 'RETRIEVAL_DOCUMENT', texts[0], 128, true)) && doc.model === `${MODEL}:document`,
    'model suffix :document embeds with RETRIEVAL_DOCUMENT (model echoed as sent)');
  const sim = await client.embeddings.create({ model: `${MODEL}:semantic_similarity`, input: texts[0], dimensions: 128 });
  check(sameVector(sim.data[0].embedding, simVector(MODEL, 'SEMANTIC_SIMILARITY', texts[0], 128, true)), 'model suffix :semantic_similarity picks that task type');
  const q = await client.embeddings.create({ model: `${MODEL}:query`, input: texts[0], dimensions: 128 });
  check(sameVector(q.data[0].embedding, simVector(MODEL, 'RETRIEVAL_QUERY', texts[0], 128, true)) && !sameVector(q.data[0].embedding, doc.data[0].embedding),
    'model suffix :query is the default (RETRIEVAL_QUERY), and differs from :document');

  // a collection as the model: its space and its query task type
  const coll = await embedd('POST', '/v1/collections', { name: 'sdk-notes', output_dimensionality: 512, query_task_type: 'QUESTION_ANSWERING' });
  check(coll.status === 201, 'a collection is created through embedd\'s API', coll);
  const byName = await client.embeddings.create({ model: 'sdk-notes', input: ['what is embedd?'] });
  check(byName.data[0].embedding.length === 512 && sameVector(byName.data[0].embedding, simVector(MODEL, 'QUESTION_ANSWERING', 'what is embedd?', 512, true)),
    'model = a collection name: its dimensions and query_task_type');
  const byId = await client.embeddings.create({ model: `${coll.json.id}:document`, input: ['a stored note'] });
  check(sameVector(byId.data[0].embedding, simVector(MODEL, 'RETRIEVAL_DOCUMENT', 'a stored note', 512, true)), 'model = a collection id with :document: its task_type');
  await expectError(client.embeddings.create({ model: 'sdk-notes', input: 'x', dimensions: 256 }), OpenAI.BadRequestError,
    'dimensions other than the collection\'s: BadRequestError', (e) => e.param === 'dimensions');

  // reuse: the same texts again are answered from storage, Google not called
  const before = await simStats();
  const { data: again, response } = await client.embeddings.create({ model: MODEL, input: texts, dimensions: 256 }).withResponse();
  const after = await simStats();
  check(response.headers.get('x-embedd-reused') === '2' && after.sync_texts === before.sync_texts, 'texts embedded before in the same space are read from storage (Google not called)',
    { reused: response.headers.get('x-embedd-reused'), before: before.sync_texts, after: after.sync_texts });
  check(again.data.every((d, i) => sameVector(d.embedding, base.data[i].embedding)), 'stored vectors equal the first answer');

  // more than 100 inputs: split into calls of at most 100
  const many = Array.from({ length: 250 }, (_, i) => `split text number ${i}`);
  const s0 = await simStats();
  const big = await client.embeddings.create({ model: MODEL, input: many, dimensions: 128 });
  const s1 = await simStats();
  check(big.data.length === 250 && big.data.every((d, i) => d.index === i && sameVector(d.embedding, simVector(MODEL, 'RETRIEVAL_QUERY', many[i], 128, true))),
    '250 inputs: 250 vectors in order');
  check(s1.sync_calls - s0.sync_calls === 3 && s1.sync_texts - s0.sync_texts === 250, '250 inputs: 3 batchEmbedContents calls of at most 100', { calls: s1.sync_calls - s0.sync_calls });

  await expectError(client.embeddings.create({ model: MODEL, input: [[1, 2, 3]] }), OpenAI.BadRequestError,
    'token-array input: BadRequestError saying embedd needs text', (e) => /embedd needs text/.test(e.message) && e.param === 'input');
  await expectError(client.embeddings.create({ model: MODEL, input: Array(2049).fill('x') }), OpenAI.BadRequestError,
    '2,049 inputs: BadRequestError (at most 2,048)', (e) => /2048/.test(e.message));
  await expectError(client.embeddings.create({ model: MODEL, input: 'word '.repeat(7000) }), OpenAI.BadRequestError,
    'a text over Gemini\'s token limit: BadRequestError naming the limit', (e) => /2048/.test(e.message) && e.code === 'context_length_exceeded');
  await expectError(client.embeddings.create({ model: 'no-such-model', input: 'x' }), OpenAI.NotFoundError, 'unknown model: NotFoundError', (e) => e.code === 'model_not_found');
  const bad = new OpenAI({ apiKey: 'ek_not_a_key', baseURL: `${E}/openai/v1`, maxRetries: 0 });
  await expectError(bad.embeddings.create({ model: MODEL, input: 'x' }), OpenAI.AuthenticationError, 'a wrong key: AuthenticationError', (e) => e.status === 401 && e.code === 'invalid_api_key');
}

// ---- files and batches ----
function line(custom_id, input, extra = {}) {
  return JSON.stringify({ custom_id, method: 'POST', url: '/v1/embeddings', body: { model: MODEL, input, dimensions: 128, ...extra } });
}
async function upload(text, name) {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });
}
async function waitBatch(id, want, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (want.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status}`);
    await sleep(100);
  }
}
async function jsonl(fileId) {
  const res = await client.files.content(fileId);
  return (await res.text()).split('\n').filter((l) => l).map((l) => JSON.parse(l));
}
const created = [];

// Check a completed batch's output line by line: each custom_id once, body as /v1/embeddings answers.
async function checkOutput(b, inputs, what) {
  const out = await jsonl(b.output_file_id);
  const byId = new Map(out.map((o) => [o.custom_id, o]));
  let good = out.length === inputs.length && byId.size === inputs.length;
  for (const [id, texts, b64] of inputs) {
    const o = byId.get(id);
    const body = o?.response?.body;
    good = good && o.error === null && o.response.status_code === 200 && typeof o.id === 'string' && typeof o.response.request_id === 'string' &&
      body.object === 'list' && body.model === MODEL && body.usage.prompt_tokens > 0 && body.data.length === texts.length &&
      body.data.every((d, i) => d.index === i && sameVector(b64 ? decodeB64(d.embedding) : d.embedding, simVector(MODEL, 'RETRIEVAL_QUERY', texts[i], 128, true)));
    if (!good) {
      check(false, what, o);
      return;
    }
  }
  check(good, what);
}

{
  // 3 lines: a string, an array with base64, a plain text
  const inputs = [['one', ['first line text'], false], ['two', ['second line', 'has two inputs'], true], ['three', ['third line'], false]];
  const text = inputs.map(([id, t, b64]) => line(id, t.length === 1 && id !== 'three' ? t[0] : t, b64 ? { encoding_format: 'base64' } : {})).join('\n') + '\n';
  const f = await upload(text, 'three.jsonl');
  check(f.object === 'file' && f.purpose === 'batch' && f.bytes === Buffer.byteLength(text) && f.filename === 'three.jsonl', 'files.create: a file object with purpose batch and its size', f);
  const got = await client.files.retrieve(f.id);
  check(got.id === f.id && got.bytes === f.bytes, 'files.retrieve');
  const back = await (await client.files.content(f.id)).text();
  check(back === text, 'files.content returns the upload byte for byte');
  const b = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/embeddings', completion_window: '24h', metadata: { run: 'sdk' } });
  created.push(b.id);
  check(b.object === 'batch' && b.status === 'validating' && b.input_file_id === f.id && b.metadata.run === 'sdk' && b.created_at > 0 && b.expires_at === b.created_at + 86400,
    'batches.create: validating, metadata kept, expires in 24 h', b);
  const done = await waitBatch(b.id, ['completed', 'failed']);
  check(done.status === 'completed' && done.request_counts.total === 3 && done.request_counts.completed === 3 && done.request_counts.failed === 0,
    '3-line batch completed with request_counts 3/3/0', done);
  check(done.in_progress_at >= done.created_at && done.finalizing_at >= done.in_progress_at && done.completed_at >= done.finalizing_at && !done.error_file_id,
    '3-line batch: timestamps in order, no error file', done);
  await checkOutput(done, inputs, '3-line batch: output line by line by custom_id equals the simulator\'s vectors');
  const outFile = await client.files.retrieve(done.output_file_id);
  check(outFile.purpose === 'batch_output' && outFile.bytes > 0, 'the output file is a batch_output file', outFile);
}

{
  // 2,000 lines
  const n = 2000;
  const inputs = Array.from({ length: n }, (_, i) => [`req-${i}`, [`batch line ${i} about topic ${i % 37} and ${(i * 7919) % 1000}`], i % 3 === 0]);
  const text = inputs.map(([id, t, b64]) => line(id, t[0], b64 ? { encoding_format: 'base64' } : {})).join('\n') + '\n';
  const t0 = Date.now();
  const f = await upload(text, 'two-thousand.jsonl');
  const b = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/embeddings', completion_window: '24h' });
  created.push(b.id);
  const done = await waitBatch(b.id, ['completed', 'failed'], 120000);
  check(done.status === 'completed' && done.request_counts.completed === n && done.request_counts.failed === 0, '2,000-line batch completed', done);
  await checkOutput(done, inputs, `2,000-line batch: every line's vector equals the simulator's (${Date.now() - t0} ms)`);
}

{
  // an invalid file: every error named by its line, the batch failed, nothing sent to Google
  const s0 = await simStats();
  const text = [
    line('ok-1', 'fine'),
    '{"custom_id": "broken", "method": "POST", ',
    line('ok-1', 'same custom_id again'),
    JSON.stringify({ custom_id: 'wrong-url', method: 'POST', url: '/v1/chat/completions', body: { model: MODEL, input: 'x' } }),
    JSON.stringify({ custom_id: 'other-model', method: 'POST', url: '/v1/embeddings', body: { model: `${MODEL}:document`, input: 'x', dimensions: 128 } }),
  ].join('\n') + '\n';
  const f = await upload(text, 'invalid.jsonl');
  const b = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/embeddings', completion_window: '24h' });
  created.push(b.id);
  const done = await waitBatch(b.id, ['failed', 'completed', 'in_progress']);
  const errs = done.errors?.data || [];
  const codeOf = (l) => errs.find((e) => e.line === l)?.code;
  check(done.status === 'failed' && done.failed_at > 0 && done.errors?.object === 'list', 'an invalid file makes the batch failed', done);
  check(codeOf(2) === 'invalid_json_line' && codeOf(3) === 'duplicate_custom_id' && codeOf(4) === 'invalid_url' && codeOf(5) === 'mismatched_model' && !codeOf(1),
    'errors.data names lines 2 to 5 (malformed, duplicate custom_id, url, mixed models)', errs);
  const s1 = await simStats();
  check(s1.texts_received === s0.texts_received && s1.sync_texts === s0.sync_texts, 'nothing of the invalid batch was sent to Google');
  check(!done.output_file_id && !done.error_file_id && done.request_counts.total === 0, 'a failed batch has no files');
}

{
  // uploads are bounded (run.sh sets --openai-file-max-bytes to 2 MiB): just over the limit
  // (found while streaming) and far over it (refused from Content-Length), nothing stored
  const limit = 2 * 1024 * 1024;
  const count = async () => { let n = 0; for await (const _ of client.files.list()) n++; return n; };
  const n0 = await count();
  for (const size of [limit + 100, 2 * limit]) {
    await expectError(upload('x'.repeat(size - 1) + '\n', 'big.jsonl'), OpenAI.APIError,
      `a ${size}-byte upload over a ${limit}-byte limit: 413 file_too_large`, (e) => e.status === 413 && e.code === 'file_too_large' && e.param === 'file');
  }
  const ok = await upload('y'.repeat(limit - 1) + '\n', 'at-limit.jsonl');
  check(ok.bytes === limit, 'a file of exactly the limit is stored', ok.bytes);
  await client.files.delete(ok.id);
  check(await count() === n0, 'refused uploads stored nothing');
}

{
  // cancel: a batch held at Google (the simulator keeps it pending) is cancelled, then ends cancelled
  await simConfig({ pending_ms: 600000 });
  const inputs = Array.from({ length: 150 }, (_, i) => line(`c-${i}`, `to be cancelled ${i}`));
  const f = await upload(inputs.join('\n'), 'cancel.jsonl');
  const b = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/embeddings', completion_window: '24h' });
  created.push(b.id);
  await waitBatch(b.id, ['in_progress']);
  const c = await client.batches.cancel(b.id);
  check(c.status === 'cancelling' && c.cancelling_at > 0, 'batches.cancel on a running batch: cancelling', c);
  const done = await waitBatch(b.id, ['cancelled']);
  await simConfig({ pending_ms: 100 });
  check(done.cancelled_at >= done.cancelling_at && done.request_counts.failed === 150 && done.error_file_id && !done.output_file_id,
    'the batch ends cancelled, its requests in the error file', done);
  const errs = await jsonl(done.error_file_id);
  check(errs.length === 150 && errs.every((e) => e.response === null && e.error.code === 'batch_cancelled'), 'every cancelled line says batch_cancelled', errs[0]);
  await expectError(client.batches.cancel(b.id), OpenAI.ConflictError, 'cancelling it again: ConflictError (the SDK does not retry it)');
}

{
  // list paging: after, limit, has_more, first_id, last_id, and the SDK's auto-paging
  const page1 = await client.batches.list({ limit: 2 });
  check(page1.data.length === 2 && page1.has_more === true && page1.data[0].id === created[created.length - 1], 'batches.list limit 2: newest first, has_more', page1.data.map((b) => b.id));
  const raw = await embedd('GET', `/openai/v1/batches?limit=2&after=${page1.data[1].id}`);
  check(raw.json.first_id === raw.json.data[0]?.id && raw.json.last_id === raw.json.data[raw.json.data.length - 1]?.id, 'a page carries first_id and last_id', raw.json);
  const all = [];
  for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
  check(all.length === created.length && [...created].reverse().every((id, i) => all[i] === id), 'auto-paging with after visits every batch once, newest first', { all, created });
  const files = [];
  for await (const f of client.files.list({ limit: 3 })) files.push(f);
  check(files.length >= 7 && new Set(files.map((f) => f.id)).size === files.length, 'files.list pages through every file once', files.length);
}

{
  // missing objects: NotFoundError
  await expectError(client.batches.retrieve('batch_doesnotexist'), OpenAI.NotFoundError, 'a missing batch: NotFoundError');
  const f = await upload('{}\n', 'gone.jsonl');
  const del = await client.files.delete(f.id);
  check(del.deleted === true && del.id === f.id, 'files.delete');
  await expectError(client.files.retrieve(f.id), OpenAI.NotFoundError, 'a deleted file: NotFoundError');
  await expectError(client.batches.create({ input_file_id: 'file-missing', endpoint: '/v1/embeddings', completion_window: '24h' }), OpenAI.BadRequestError,
    'a batch of a missing file: BadRequestError', (e) => e.param === 'input_file_id');
  await expectError(client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.BadRequestError,
    'a batch of another endpoint: BadRequestError', (e) => e.param === 'endpoint');
}

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
