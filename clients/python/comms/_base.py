"""The client's transport: authentication, idempotency keys for sends, retries of 429 and 503,
and errors as CommsError. Standard library only."""
from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

# Methods whose request means the same however often it arrives: retried on 429 and 503.
_SAFE = {"GET", "HEAD", "PUT", "DELETE"}


class CommsError(Exception):
    """A refusal of the API: its RFC 9457 problem, the request's id, and how long to wait."""

    def __init__(self, status: int, problem: dict[str, Any], request_id: str, retry_after: float | None):
        self.status = status
        self.type = str(problem.get("type", ""))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.errors: list[dict[str, str]] = list(problem.get("errors") or [])
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(f"comms API: {status} {self.title}" + (f": {self.detail}" if self.detail else "")
                         + (f" (request {request_id})" if request_id else ""))

    @property
    def slug(self) -> str:
        """The last part of the problem type: "validation", "rate-limited" (docs/errors.md)."""
        return self.type[max(self.type.rfind("#"), self.type.rfind("/")) + 1:]

    def field(self, name: str) -> str:
        """What is wrong with the named field, or ""."""
        return next((e.get("message", "") for e in self.errors if e.get("field") == name), "")


def _seg(v: str | int) -> str:
    return urllib.parse.quote(str(v), safe="")


class _Base:
    def __init__(self, base_url: str, api_key: str, *, tenant_id: str | None = None, retries: int = 3, timeout: float = 30.0):
        """A client of the API at base_url ("https://comms.example.com") with api_key: a tenant key,
        a service key with tenant_id, an admin key (Admin), or a recipient token for the inbox."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.tenant_id = tenant_id
        self.retries = max(retries, 0)
        self.timeout = timeout

    def with_key(self, api_key: str):
        """The same client with another key: a recipient token for the inbox calls."""
        return type(self)(self.base_url, api_key, tenant_id=self.tenant_id, retries=self.retries, timeout=self.timeout)

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                idempotency_key: str | None = None, send: bool = False, read: str = "json") -> Any:
        """Calls method on path and returns the answer (decoded JSON, bytes, or None); a refusal
        raises CommsError. A send carries an Idempotency-Key (idempotency_key, or a random one);
        a 429 or 503 is retried after its Retry-After, up to retries times, for requests that are
        safe to repeat (GET, PUT, DELETE, and sends)."""
        if send and not idempotency_key:
            idempotency_key = "py-" + uuid.uuid4().hex
        q = {k: _param(v) for k, v in (query or {}).items() if v is not None}
        url = self.base_url + path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if self.tenant_id:
            headers["X-Tenant-Id"] = self.tenant_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        safe = method in _SAFE or bool(idempotency_key)
        attempt = 0
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method), timeout=self.timeout) as resp:
                    raw = resp.read()
                if read == "bytes":
                    return raw
                return json.loads(raw) if raw and read == "json" else None
            except urllib.error.HTTPError as e:
                err = _error(e)
                if e.code not in (429, 503) or not safe or attempt >= self.retries:
                    raise err from None
                wait = err.retry_after if err.retry_after else 0.25 * 2 ** attempt * (0.5 + random.random())
                time.sleep(min(wait, 60.0))
                attempt += 1

    _call = request

    def _stream(self, path: str) -> Iterator[dict[str, str]]:
        """Reads a Server-Sent Events stream, yielding {"event", "id", "data"} per event until
        it ends."""
        req = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"})
        try:
            resp = urllib.request.urlopen(req)  # no timeout: the stream lives until it ends
        except urllib.error.HTTPError as e:
            raise _error(e) from None
        with resp:
            event: dict[str, str] = {"event": "message", "id": "", "data": ""}
            for raw in resp:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if event["data"] or event["event"] != "message":
                        yield event
                    event = {"event": "message", "id": "", "data": ""}
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    event["data"] += ("\n" if event["data"] else "") + value
                elif field in ("event", "id"):
                    event[field] = value


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _error(e: urllib.error.HTTPError) -> CommsError:
    raw = e.read()
    try:
        problem = json.loads(raw)
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"title": e.reason, "detail": raw.decode(errors="replace").strip()}
    try:
        retry_after = float(e.headers.get("Retry-After", ""))
    except ValueError:
        retry_after = None
    return CommsError(e.code, problem, e.headers.get("X-Request-Id", ""), retry_after)
