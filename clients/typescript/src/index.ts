// The TypeScript client of the comms API (docs/clients.md). Every operation of docs/openapi.json
// is typed from the document by openapi-typescript (schema.ts) and called through openapi-fetch:
//
//   const comms = createClient({ baseUrl: "https://comms.example.com", apiKey: process.env.COMMS_API_KEY! });
//   const accepted = await unwrap(comms.POST("/v1/messages", { body: { channel: "sms", to: "+14155550123", text: "hi" } }));
//
// What this file adds to openapi-fetch: sends carry an Idempotency-Key; a 429 or 503 is retried
// after its Retry-After for requests that are safe to repeat; a refusal becomes a CommsError;
// paginate walks cursor pages; verifyWebhook checks a delivery and returns its CloudEvent.
import createFetchClient, { type Client } from "openapi-fetch";
import { Webhook } from "standardwebhooks";
import type { components, paths, webhooks } from "./schema.js";

export type { components, paths, webhooks };
/** The document's schemas by name: Schemas["Message"], Schemas["CloudEvent"]… */
export type Schemas = components["schemas"];
/** What comms delivers to a webhook endpoint. */
export type CloudEvent = Schemas["CloudEvent"];

export interface ClientOptions {
  /** The API's base URL: "https://comms.example.com". */
  baseUrl: string;
  /** A tenant key, a service key (with tenantId), or a recipient token for the inbox calls. */
  apiKey: string;
  /** With a service key: the tenant it acts for (X-Tenant-Id). */
  tenantId?: string;
  /** How many times a 429 or 503 is retried (default 3; 0: never). */
  retries?: number;
  /** The fetch to call (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

/** A refusal of the API: its RFC 9457 problem, the request's id, and how long to wait (429, 503). */
export class CommsError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: { field: string; message: string }[];
  readonly requestId: string;
  readonly retryAfterSeconds?: number;

  constructor(status: number, problem: Partial<Schemas["Problem"]>, requestId: string, retryAfterSeconds?: number) {
    super(`comms API: ${status} ${problem.title ?? ""}${problem.detail ? ": " + problem.detail : ""}${requestId ? ` (request ${requestId})` : ""}`);
    this.name = "CommsError";
    this.status = status;
    this.type = problem.type ?? "";
    this.title = problem.title ?? "";
    this.detail = problem.detail ?? "";
    this.errors = (problem.errors ?? []).map((e) => ({ field: e.field ?? "", message: e.message ?? "" }));
    this.requestId = requestId;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The last part of the problem type: "validation", "rate-limited" (docs/errors.md). */
  get slug(): string {
    return this.type.slice(Math.max(this.type.lastIndexOf("#"), this.type.lastIndexOf("/")) + 1);
  }

  /** What is wrong with the named field, or "". */
  field(name: string): string {
    return this.errors.find((e) => e.field === name)?.message ?? "";
  }
}

/** The sends, which get an Idempotency-Key unless the caller gives one. */
const sends = new Set(["/v1/messages", "/v1/messages/batch"]);

/**
 * Returns a typed client of the API: client.GET("/v1/messages/{id}", { params: { path: { id } } })
 * and so on for every path of the document (openapi-fetch).
 */
export function createClient(options: ClientOptions): Client<paths> {
  const retries = Math.max(options.retries ?? 3, 0);
  const base = options.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { Authorization: `Bearer ${options.apiKey}` };
  if (options.tenantId) headers["X-Tenant-Id"] = options.tenantId;

  const retrying = async (input: Request): Promise<Response> => {
    let request = input;
    const path = new URL(request.url).pathname;
    if (request.method === "POST" && sends.has(path) && !request.headers.has("Idempotency-Key")) {
      request = new Request(request, { headers: withHeader(request.headers, "Idempotency-Key", `ts-${crypto.randomUUID()}`) });
    }
    // Repeating is safe when the request means the same however often it arrives.
    const safe = ["GET", "HEAD", "PUT", "DELETE"].includes(request.method) || request.headers.has("Idempotency-Key");
    const body = request.body ? await request.arrayBuffer() : undefined;
    for (let attempt = 0; ; attempt++) {
      const response = await base(new Request(request, { body }));
      if ((response.status !== 429 && response.status !== 503) || !safe || attempt >= retries) return response;
      const after = Number(response.headers.get("Retry-After"));
      const wait = after > 0 ? after * 1000 : 250 * 2 ** attempt * (0.5 + Math.random());
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 60_000)));
    }
  };
  return createFetchClient<paths>({ baseUrl: options.baseUrl.replace(/\/+$/, ""), headers, fetch: retrying });
}

function withHeader(h: Headers, name: string, value: string): Headers {
  const out = new Headers(h);
  out.set(name, value);
  return out;
}

/** Awaits an openapi-fetch call and returns its data, or throws a CommsError. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const retryAfter = Number(response.headers.get("Retry-After")) || undefined;
  const problem = (typeof error === "object" && error !== null ? error : { title: response.statusText, detail: String(error ?? "") }) as Partial<Schemas["Problem"]>;
  throw new CommsError(response.status, problem, response.headers.get("X-Request-Id") ?? "", retryAfter);
}

/**
 * Yields every item of a list, page after page: list is called with each page's cursor
 * (undefined for the first) and answers the page.
 *
 *   for await (const m of paginate((cursor) => comms.GET("/v1/messages", { params: { query: { cursor, limit: 100 } } }))) { … }
 */
export async function* paginate<T>(
  list: (cursor: string | undefined) => Promise<{ data?: { data: T[]; next_cursor?: string }; error?: unknown; response: Response }>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await unwrap(list(cursor));
    yield* page.data;
    cursor = page.next_cursor || undefined;
  } while (cursor);
}

/**
 * Checks a delivery to the tenant's webhook endpoint (Standard Webhooks, with the official
 * standardwebhooks package: the webhook-id, webhook-timestamp and webhook-signature headers, the
 * endpoint's whsec_ secret, a 5-minute window) and returns its CloudEvent; throws if it does not
 * verify. body must be the request's body exactly as received. Deduplicate on the event's id.
 */
export function verifyWebhook(secret: string, headers: Record<string, string | string[] | undefined> | Headers, body: string): CloudEvent {
  const h: Record<string, string> = {};
  if (headers instanceof Headers) {
    headers.forEach((v, k) => (h[k] = v));
  } else {
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) h[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return new Webhook(secret).verify(body, h) as CloudEvent;
}
