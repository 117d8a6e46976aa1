// The TypeScript client against a running API (internal/testing/clients starts one and sets
// COMMS_URL, COMMS_ADMIN_KEY, COMMS_KEY and COMMS_TENANT_ID).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { test } from "node:test";
import openapiTS, { astToString } from "openapi-typescript";
import { CommsError, createClient, paginate, unwrap, verifyWebhook } from "../dist/index.js";

const url = process.env.COMMS_URL;
const comms = createClient({ baseUrl: url, apiKey: process.env.COMMS_KEY });
const admin = createClient({ baseUrl: url, apiKey: process.env.COMMS_ADMIN_KEY });
const doc = JSON.parse(readFileSync(new URL("../../../docs/openapi.json", import.meta.url)));

test("schema.ts is docs/openapi.json as openapi-typescript reads it today, every operation included", async () => {
  const fresh = astToString(await openapiTS(doc));
  const committed = readFileSync(new URL("../src/schema.ts", import.meta.url), "utf8");
  assert.ok(committed.includes(fresh.trim()), "src/schema.ts is stale: run npm run generate");
  let n = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const op of Object.values(ops)) {
      if (!op.operationId) continue;
      n++;
      assert.ok(committed.includes(`    "${path}": {`), `no path ${path}`);
      assert.ok(committed.includes(`    ${op.operationId}: {`), `no operation ${op.operationId}`);
    }
  }
  assert.ok(n >= 100, `read ${n} operations`);
});

test("send, batch, template send, schedule and cancel, read and page", async () => {
  const sms = { channel: "sms", to: "+14155550123", text: "Your code is 123456" };
  const first = await unwrap(comms.POST("/v1/messages", { body: sms }));
  const read = await unwrap(comms.GET("/v1/messages/{id}", { params: { path: { id: first.id } } }));
  assert.equal(read.to, sms.to);
  assert.match(read.idempotency_key, /^ts-/, "a send carries the client's idempotency key");
  const mine = await unwrap(comms.POST("/v1/messages", { body: sms, params: { header: { "Idempotency-Key": "order-42" } } }));
  const again = await unwrap(comms.POST("/v1/messages", { body: sms, params: { header: { "Idempotency-Key": "order-42" } } }));
  assert.equal(again.id, mine.id, "the caller's key replays");
  assert.notEqual(mine.id, first.id);

  const batch = await unwrap(comms.POST("/v1/messages/batch", { body: { messages: [
    { channel: "sms", to: "+14155550124", text: "batch" }, { channel: "sms", to: "+14155550125", text: "batch" }] } }));
  assert.equal(batch.accepted, 2);

  await unwrap(comms.POST("/v1/templates", { body: { key: "otp", name: "Login code", channel: "sms",
    variables: { type: "object", required: ["code"], properties: { code: { type: "string" } } } } }));
  const v = await unwrap(comms.POST("/v1/templates/{key}/versions", { params: { path: { key: "otp" } }, body: { text: "Code {{code}}" } }));
  await unwrap(comms.POST("/v1/templates/{key}/versions/{n}/activate", { params: { path: { key: "otp", n: v.version } } }));
  const byTemplate = await unwrap(comms.POST("/v1/messages", { body: { to: "+14155550123", template: { key: "otp", data: { code: "424242" } } } }));
  const rendered = await unwrap(comms.GET("/v1/messages/{id}", { params: { path: { id: byTemplate.id } } }));
  assert.equal(rendered.text, "Code 424242");

  const later = await unwrap(comms.POST("/v1/messages", { body: { ...sms, send_at: new Date(Date.now() + 86_400_000).toISOString() } }));
  assert.equal(later.status, "scheduled");
  const canceled = await unwrap(comms.POST("/v1/messages/{id}/cancel", { params: { path: { id: later.id } } }));
  assert.equal(canceled.status, "canceled");

  const ids = [];
  for await (const m of paginate((cursor) => comms.GET("/v1/messages", { params: { query: { limit: 2, cursor } } }))) ids.push(m.id);
  assert.equal(ids.length, 6, "two a page, every message once");
  assert.equal(new Set(ids).size, 6);

  await assert.rejects(unwrap(comms.POST("/v1/messages", { body: { channel: "sms", to: "not a number", text: "x" } })), (err) => {
    assert.ok(err instanceof CommsError);
    assert.equal(err.status, 422);
    assert.equal(err.slug, "validation");
    assert.ok(err.field("to"));
    assert.match(err.requestId, /./);
    return true;
  });
});

test("a 429 is retried after its Retry-After into one acceptance", async () => {
  const tenant = await unwrap(admin.POST("/admin/tenants", { body: { name: "ts rate limited", allow_system_fallback: true } }));
  const key = await unwrap(admin.POST("/admin/api-keys", { body: { kind: "tenant", tenant_id: tenant.id, name: "ts" } }));
  await unwrap(admin.PATCH("/admin/tenants/{id}", { params: { path: { id: tenant.id } }, body: { rate_per_second: 2, rate_burst: 1 } }));
  const statuses = [];
  const counting = async (req) => { const r = await fetch(req); statuses.push(r.status); return r; };
  const limited = createClient({ baseUrl: url, apiKey: key.secret, fetch: counting });
  for (let i = 0; i < 2; i++) await unwrap(limited.POST("/v1/messages", { body: { channel: "sms", to: "+14155550123", text: "hi" } }));
  assert.ok(statuses.includes(429), `answers ${statuses}`);
  assert.equal(statuses.filter((s) => s === 202).length, 2);
  const page = await unwrap(limited.GET("/v1/messages", {}));
  assert.equal(page.data.length, 2, "each send accepted once");
});

test("a POST that is not a send is not retried", async () => {
  let calls = 0;
  const unavailable = async () => { calls++; return new Response('{"status":503,"title":"Service unavailable"}', { status: 503, headers: { "Retry-After": "0", "Content-Type": "application/problem+json" } }); };
  const c = createClient({ baseUrl: url, apiKey: "ck_tenant_x", fetch: unavailable, retries: 2 });
  await assert.rejects(unwrap(c.POST("/v1/templates", { body: { key: "k", name: "n", channel: "sms" } })), CommsError);
  assert.equal(calls, 1);
  await assert.rejects(unwrap(c.GET("/v1/templates", {})), CommsError);
  assert.equal(calls, 1 + 3, "a read is retried twice");
});

test("a webhook delivery is verified and decoded; an altered one is refused", async () => {
  const got = [];
  let arrived;
  const delivered = new Promise((resolve) => (arrived = resolve));
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => { got.push({ headers: req.headers, body }); res.end(); arrived(); });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const ep = await unwrap(comms.POST("/v1/webhook-endpoints", { body: { url: `http://127.0.0.1:${server.address().port}/hooks`, event_types: ["comms.message.sent"] } }));
    const accepted = await unwrap(comms.POST("/v1/messages", { body: { channel: "sms", to: "+14155550199", text: "hook" } }));
    await Promise.race([delivered, new Promise((_, reject) => setTimeout(() => reject(new Error("no delivery in 30 s")), 30_000))]);
    const ev = verifyWebhook(ep.secret, got[0].headers, got[0].body);
    assert.equal(ev.type, "comms.message.sent");
    assert.equal(ev.data.message_id, accepted.id);
    assert.equal(ev.id, got[0].headers["webhook-id"]);
    assert.throws(() => verifyWebhook(ep.secret, got[0].headers, got[0].body.replace(accepted.id, "msg_forged")));
  } finally {
    server.close();
  }
});
