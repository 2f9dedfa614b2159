#!/usr/bin/env python3
"""A test server for osquery's TLS remote API, with Fleet's agent routes.

Written for Osprey's end-to-end tests from the published request and reply shapes: enroll,
config, log, distributed read/write, carve begin/block, under /api/v1/osquery/ and
/api/osquery/. TLS always; mutual TLS with --client-ca.

State lives in one folder (--state), so that a test can steer the server and read what it
received without a control protocol:

  written by the server (one JSON object per line):
    requests.jsonl   every request: path, the headers a test checks, the decoded body
    enroll.jsonl     enrollment bodies
    log.jsonl        log bodies
    write.jsonl      distributed write bodies
    carve-<session>.bin  the reassembled carve, with carve-<session>.json its begin body
  read by the server (the test writes them):
    config.json      the reply to /config (default {})
    queries.json     the next distributed read's {"queries": …, "discovery": …}; handed out
                     once, then renamed to queries.sent.json
    invalidate       present: every node key issued so far is invalid (the file is removed
                     and the keys forgotten; requests with them get node_invalid)
    down             present: every connection is closed without a reply

Prints "listening <port>" on stdout once it accepts connections.
"""

import argparse
import base64
import gzip
import json
import os
import secrets
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ARGS = None
KEYS = set()


def state(name):
    return os.path.join(ARGS.state, name)


def append(name, obj):
    with LOCK:
        with open(state(name), "a", encoding="utf-8") as f:
            f.write(json.dumps(obj, sort_keys=True) + "\n")


def read_json(name, default):
    try:
        with open(state(name), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def node_valid(body):
    with LOCK:
        if os.path.exists(state("invalidate")):
            os.remove(state("invalidate"))
            KEYS.clear()
        return body.get("node_key") in KEYS


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads the state files
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if os.path.exists(state("down")):
            self.close_connection = True
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            self.reply(400, {"error": "the body is not JSON"})
            return
        path = self.path
        for prefix in ("/api/v1/osquery/", "/api/osquery/"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        else:
            self.reply(404, {"error": "no such route: " + self.path})
            return
        append("requests.jsonl", {
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "user_agent": self.headers.get("User-Agent"),
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "body": body,
        })
        if path == "enroll":
            append("enroll.jsonl", body)
            if body.get("enroll_secret") != ARGS.secret:
                self.reply(401, {"node_invalid": True, "error": "enroll failed: invalid secret"})
                return
            key = secrets.token_urlsafe(18)[:24]
            with LOCK:
                KEYS.add(key)
            self.reply(200, {"node_key": key})
            return
        if path == "carve/block":
            session = str(body.get("session_id", ""))
            meta = read_json("carve-%s.json" % session, None)
            if meta is None or body.get("request_id") != meta.get("request_id"):
                self.reply(404, {"error": "no such carve session"})
                return
            with LOCK:
                with open(state("carve-%s.bin" % session), "ab") as f:
                    f.write(base64.b64decode(body.get("data", "")))
            self.reply(200, {"success": True})
            return
        if not node_valid(body):
            self.reply(401, {"node_invalid": True, "error": "invalid node key"})
            return
        if path == "config":
            self.reply(200, read_json("config.json", {}))
        elif path == "log":
            append("log.jsonl", body)
            self.reply(200, {})
        elif path == "distributed/read":
            with LOCK:
                q = read_json("queries.json", None)
                if q is not None:
                    os.replace(state("queries.json"), state("queries.sent.json"))
            self.reply(200, q if q is not None else {"queries": {}})
        elif path == "distributed/write":
            append("write.jsonl", body)
            self.reply(200, {})
        elif path == "carve/begin":
            session = secrets.token_hex(8)
            with LOCK:
                with open(state("carve-%s.json" % session), "w", encoding="utf-8") as f:
                    json.dump(body, f)
            self.reply(200, {"session_id": session, "success": True})
        else:
            self.reply(404, {"error": "no such route: " + self.path})


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--secret", required=True)
    p.add_argument("--port", type=int, default=0)
    ARGS = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    if ARGS.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ARGS.client_ca)
    httpd = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print("listening %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
