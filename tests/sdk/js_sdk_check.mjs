// js_sdk_check.mjs: drive gemini-sim with Google's official JavaScript SDK
// (@google/genai) to check that the simulator looks like Google to it.
// Usage: GEMINI_SIM_URL=http://127.0.0.1:PORT node js_sdk_check.mjs
// Exits non-zero on the first mismatch; prints one line per check.
import { GoogleGenAI } from '@google/genai';
import { writeFileSync } from 'node:fs';

const base = process.env.GEMINI_SIM_URL;
const ai = new GoogleGenAI({
  apiKey: process.env.GEMINI_SIM_KEY || 'sim-key',
  httpOptions: { baseUrl: base },
});
const model = 'gemini-embedding-001';
let failures = 0;
function check(cond, what, detail) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 300) : ''}`);
  if (!cond) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitDone(name) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const job = await ai.batches.get({ name });
    if (['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${name}: ${job.state}`);
    await sleep(50);
  }
}

// Inline embeddings batch.
const job = await ai.batches.createEmbeddings({
  model,
  src: { inlinedRequests: { contents: [{ parts: [{ text: 'hello' }] }, { parts: [{ text: 'world' }] }], config: { outputDimensionality: 8, taskType: 'RETRIEVAL_DOCUMENT' } } },
  config: { displayName: 'sdk-inline' },
});
check(/^batches\/[a-z0-9]{36}$/.test(job.name), 'createEmbeddings returns a batch name', job);
check(job.state === 'JOB_STATE_PENDING', 'new batch is JOB_STATE_PENDING (mapped from BATCH_STATE_PENDING)', job.state);
check(job.displayName === 'sdk-inline', 'displayName read from metadata', job.displayName);
const done = await waitDone(job.name);
check(done.state === 'JOB_STATE_SUCCEEDED', 'batch succeeds', done.state);
const items = done.dest?.inlinedEmbedContentResponses;
check(Array.isArray(items) && items.length === 2, 'SDK finds 2 inline embedding responses', done.dest);
check(items?.[0]?.response?.embedding?.values?.length === 8, 'first response has 8 values', items?.[0]);

// List, cancel, delete.
const pager = await ai.batches.list({ config: { pageSize: 10 } });
const listed = [];
for await (const j of pager) listed.push(j.name);
check(listed.includes(job.name), 'list contains the batch', listed);
const slow = await ai.batches.createEmbeddings({ model, src: { inlinedRequests: { contents: ['x'], config: { outputDimensionality: 4 } } }, config: { displayName: 'sdk-cancel' } });
await ai.batches.cancel({ name: slow.name });
const cancelled = await ai.batches.get({ name: slow.name });
check(cancelled.state === 'JOB_STATE_CANCELLED', 'cancel makes the batch JOB_STATE_CANCELLED', cancelled.state);
await ai.batches.delete({ name: slow.name });
let gone = false;
try { await ai.batches.get({ name: slow.name }); } catch (e) { gone = e?.status === 404 || /404/.test(String(e)); }
check(gone, 'deleted batch is 404');

// Interactive embeddings (the SDK calls batchEmbedContents).
const emb = await ai.models.embedContent({ model, contents: ['q1', 'q2'], config: { taskType: 'RETRIEVAL_QUERY', outputDimensionality: 16 } });
check(emb.embeddings?.length === 2 && emb.embeddings[0].values.length === 16, 'models.embedContent returns 2 embeddings of 16 values', emb);

// File-based embeddings batch: upload JSONL, create, download the output.
const jsonl = '{"key":"r1","request":{"content":{"parts":[{"text":"alpha"}]},"outputDimensionality":4}}\n' +
  '{"key":"r2","request":{"content":{"parts":[{"text":"beta"}]},"outputDimensionality":4}}\n';
writeFileSync('sdk-input.jsonl', jsonl);
const file = await ai.files.upload({ file: 'sdk-input.jsonl', config: { mimeType: 'application/jsonl', displayName: 'sdk-file' } });
check(/^files\/[a-z0-9]+$/.test(file.name) && file.state === 'ACTIVE', 'files.upload returns an ACTIVE file', file);
check(String(file.sizeBytes) === String(jsonl.length), 'sizeBytes matches', file.sizeBytes);
const fjob = await ai.batches.createEmbeddings({ model, src: { fileName: file.name }, config: { displayName: 'sdk-file-batch' } });
const fdone = await waitDone(fjob.name);
check(fdone.state === 'JOB_STATE_SUCCEEDED', 'file batch succeeds', fdone.state);
const out = fdone.dest?.fileName;
check(typeof out === 'string' && out.startsWith('files/batch-'), 'SDK reads the responsesFile name', fdone.dest);
await ai.files.download({ file: out, downloadPath: 'sdk-output.jsonl' });
const { readFileSync } = await import('node:fs');
await sleep(200);
const lines = readFileSync('sdk-output.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l));
check(lines.length === 2 && lines.every((l) => l.key && l.response?.embedding?.values?.length === 4), 'downloaded output has 2 keyed lines', lines);
const meta = await ai.files.get({ name: file.name });
check(meta.name === file.name, 'files.get works', meta);
await ai.files.delete({ name: file.name });

console.log(failures ? `${failures} checks failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
