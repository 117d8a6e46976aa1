"""The Python client against a running API (internal/testing/clients starts one and sets
COMMS_URL, COMMS_ADMIN_KEY, COMMS_KEY and COMMS_TENANT_ID)."""
import datetime
import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import comms  # noqa: E402
import generate  # noqa: E402

URL = os.environ.get("COMMS_URL", "")


def serve(handler_fn):
    """Starts a local HTTP server whose POSTs and GETs go to handler_fn(handler, body); returns it."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            handler_fn(self, body)

        do_GET = do_POST = _any

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class ClientTest(unittest.TestCase):
    def setUp(self):
        if not URL:
            self.fail("COMMS_URL is not set: run through internal/testing/clients")
        self.c = comms.Client(URL, os.environ["COMMS_KEY"])
        self.admin = comms.Admin(URL, os.environ["COMMS_ADMIN_KEY"])

    def test_the_generated_file_is_current_and_has_every_operation(self):
        self.assertEqual(generate.render(), (HERE / "comms" / "_generated.py").read_text(),
                         "comms/_generated.py is stale: run python3 clients/python/generate.py")
        doc = json.loads(generate.DOC.read_text())
        n = 0
        for ops in doc["paths"].values():
            for op in ops.values():
                n += 1
                on = comms.Admin if op["tags"][0].startswith("Admin:") else comms.Client
                self.assertTrue(callable(getattr(on, generate.snake(op["operationId"]), None)), op["operationId"])
        self.assertGreaterEqual(n, 100)

    def fresh_client(self, name):
        """A client of a new tenant of its own, so that what another test sends is not counted."""
        tenant = self.admin.create_tenant({"name": name, "allow_system_fallback": True})
        return comms.Client(URL, self.admin.create_api_key({"kind": "tenant", "tenant_id": tenant["id"], "name": "py"})["secret"]), tenant

    def test_send_batch_template_schedule_cancel_read_and_page(self):
        c, _ = self.fresh_client("py sends")
        sms = {"channel": "sms", "to": "+14155550123", "text": "Your code is 123456"}
        first = c.send_message(sms)
        read = c.get_message(first["id"])
        self.assertEqual(read["to"], sms["to"])
        self.assertTrue(read["idempotency_key"].startswith("py-"), "a send carries the client's idempotency key")
        mine = c.send_message(sms, idempotency_key="order-42")
        self.assertEqual(c.send_message(sms, idempotency_key="order-42")["id"], mine["id"], "the caller's key replays")
        batch = c.send_batch({"messages": [{"channel": "sms", "to": "+14155550124", "text": "b"}, {"channel": "sms", "to": "+14155550125", "text": "b"}]})
        self.assertEqual(batch["accepted"], 2)

        c.create_template({"key": "otp", "name": "Login code", "channel": "sms",
                           "variables": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}})
        v = c.create_template_version("otp", {"text": "Code {{code}}"})
        c.activate_template_version("otp", v["version"])
        by_template = c.send_message({"to": "+14155550123", "template": {"key": "otp", "data": {"code": "424242"}}})
        self.assertEqual(c.get_message(by_template["id"])["text"], "Code 424242")

        tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
        later = c.send_message({**sms, "send_at": tomorrow})
        self.assertEqual(later["status"], "scheduled")
        self.assertEqual(c.cancel_message(later["id"])["status"], "canceled")

        ids = [m["id"] for m in comms.paginate(c.list_messages, limit=2)]
        self.assertEqual(len(ids), 6)
        self.assertEqual(len(set(ids)), 6)

        with self.assertRaises(comms.CommsError) as ctx:
            c.send_message({"channel": "sms", "to": "not a number", "text": "x"})
        err = ctx.exception
        self.assertEqual((err.status, err.slug), (422, "validation"))
        self.assertTrue(err.field("to"))
        self.assertTrue(err.request_id)

    def test_the_inbox_with_a_recipient_token(self):
        import queue
        c, _ = self.fresh_client("py inbox")
        c.put_recipient("u_1", {})
        browser = c.with_key(c.create_inbox_token("u_1", {})["token"])
        events = queue.Queue()
        threading.Thread(target=lambda: [events.put(e) for e in browser.stream_inbox()], daemon=True).start()
        ready = events.get(timeout=20)
        self.assertEqual((ready["event"], json.loads(ready["data"])["unread_count"]), ("ready", 0))
        accepted = c.send_message({"channel": "in_app", "recipient": "u_1", "in_app": {"title": "Welcome"}})
        arrival = events.get(timeout=20)
        self.assertEqual((arrival["event"], arrival["id"], json.loads(arrival["data"])["title"]), ("message", accepted["id"], "Welcome"))
        page = browser.list_inbox()
        self.assertEqual((len(page["data"]), page["unread_count"]), (1, 1))
        self.assertTrue(browser.mark_inbox_read(accepted["id"])["read_at"])

    def test_a_429_is_retried_after_its_retry_after(self):
        limited, tenant = self.fresh_client("py rate limited")
        self.admin.update_tenant(tenant["id"], {"rate_per_second": 2, "rate_burst": 1})
        statuses = []
        real = urllib.request.urlopen

        def counting(req, *args, **kwargs):
            try:
                resp = real(req, *args, **kwargs)
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
                raise
            statuses.append(resp.status)
            return resp
        urllib.request.urlopen = counting
        try:
            for _ in range(2):
                limited.send_message({"channel": "sms", "to": "+14155550123", "text": "hi"})
        finally:
            urllib.request.urlopen = real
        self.assertIn(429, statuses)
        self.assertEqual(statuses.count(202), 2)
        self.assertEqual(len(limited.list_messages()["data"]), 2, "each send accepted once")

    def test_a_post_that_is_not_a_send_is_not_retried(self):
        calls = []

        def unavailable(h, body):
            calls.append(h.command + " " + h.path)
            h.send_response(503)
            h.send_header("Retry-After", "0")
            h.send_header("Content-Type", "application/problem+json")
            h.end_headers()
            h.wfile.write(b'{"status":503,"title":"Service unavailable"}')
        srv = serve(unavailable)
        try:
            c = comms.Client(f"http://127.0.0.1:{srv.server_address[1]}", "ck_tenant_x", retries=2)
            with self.assertRaises(comms.CommsError):
                c.create_template({"key": "k", "name": "n", "channel": "sms"})
            with self.assertRaises(comms.CommsError):
                c.get_template("k")
            with self.assertRaises(comms.CommsError):
                c.send_message({"channel": "sms", "to": "+14155550123", "text": "x"})
        finally:
            srv.shutdown()
            srv.server_close()
        self.assertEqual(calls, ["POST /v1/templates"] + ["GET /v1/templates/k"] * 3 + ["POST /v1/messages"] * 3)

    def test_a_webhook_delivery_is_verified_and_decoded(self):
        got = []
        arrived = threading.Event()

        def receive(h, body):
            got.append((dict(h.headers), body))
            h.send_response(200)
            h.end_headers()
            arrived.set()
        srv = serve(receive)
        try:
            ep = self.c.create_webhook_endpoint({"url": f"http://127.0.0.1:{srv.server_address[1]}/hooks", "event_types": ["comms.message.sent"]})
            accepted = self.c.send_message({"channel": "sms", "to": "+14155550199", "text": "hook"})
            self.assertTrue(arrived.wait(30), "no delivery in 30 s")
        finally:
            srv.shutdown()
            srv.server_close()
        headers, body = got[0]
        event = comms.verify_webhook(ep["secret"], headers, body)
        self.assertEqual((event["type"], event["data"]["message_id"]), ("comms.message.sent", accepted["id"]))
        with self.assertRaises(comms.WebhookVerificationError):
            comms.verify_webhook(ep["secret"], headers, body.replace(accepted["id"].encode(), b"msg_forged"))

    def test_signatures_agree_with_the_standardwebhooks_npm_package(self):
        secret, msg_id, ts, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "evt_1", int(time.time()), b'{"type":"comms.message.sent","n":"\\u00e9"}'
        script = ("import {Webhook} from 'standardwebhooks';"
                  "const [s, id, ts, body] = process.argv.slice(1);"
                  "const w = new Webhook(s); const sig = w.sign(id, new Date(Number(ts) * 1000), body);"
                  "w.verify(body, {'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': process.argv[5]});"
                  "console.log(sig);")
        ours = comms.sign_webhook(secret, msg_id, ts, body)
        out = subprocess.run(["node", "--input-type=module", "-e", script, secret, msg_id, str(ts), body.decode(), ours],
                             cwd=HERE.parent / "typescript", capture_output=True, text=True, check=True)
        theirs = out.stdout.strip()
        self.assertEqual(theirs, ours, "the npm package signs what Python signs, and verifies Python's signature")
        comms.verify_webhook(secret, {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": theirs}, body)


if __name__ == "__main__":
    unittest.main()
