"""The Python client of the comms API (docs/clients.md): a method for every operation of
docs/openapi.json, its schemas as TypedDicts, standard library only.

    import comms
    c = comms.Client("https://comms.example.com", os.environ["COMMS_API_KEY"])
    accepted = c.send_message({"channel": "sms", "to": "+14155550123", "text": "hello from comms"})
    message = c.get_message(accepted["id"])
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._base import CommsError
from ._generated import *  # noqa: F401,F403  (the schemas' TypedDicts)
from ._generated import _AdminOperations, _TenantOperations

__all__ = ["Admin", "Client", "CommsError", "WebhookVerificationError", "paginate", "sign_webhook", "verify_webhook"]


class Client(_TenantOperations):
    """Calls the API as a tenant: Client(base_url, api_key, tenant_id=None, retries=3, timeout=30)."""


class Admin(_AdminOperations):
    """Calls the operators' API (/admin) with an admin key."""


def paginate(list_call: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Iterator[Any]:
    """Yields every item of a list, page after page: paginate(c.list_messages, status="failed")."""
    cursor = None
    while True:
        page = list_call(**kwargs, cursor=cursor)
        yield from page.get("data", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return


class WebhookVerificationError(Exception):
    """A delivery that is not comms' (a wrong signature, secret or timestamp)."""


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature of a delivery (Standard Webhooks v1): base64 HMAC-SHA256 of
    "{id}.{timestamp}.{body}" keyed with the base64 after whsec_."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: int = 300, now: float | None = None) -> dict[str, Any]:
    """Checks a delivery to the tenant's endpoint (Standard Webhooks: webhook-id,
    webhook-timestamp and webhook-signature, signed with the endpoint's whsec_ secret, within
    tolerance seconds) and returns its CloudEvent; raises WebhookVerificationError otherwise.
    body is the request's body exactly as received. Deduplicate on the event's id."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(ts)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance window")
    want = sign_webhook(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(s, want) for s in sigs.split()):
        raise WebhookVerificationError("no matching signature")
    event: dict[str, Any] = json.loads(body)
    return event
