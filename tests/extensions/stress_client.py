"""One client of the extension stress test: for SECONDS, on one connection, runs
`SELECT '<token>' AS token, count(*) AS n FROM <table>` over TABLES in turn, each with a
token of its own, and checks that each reply carries its own token.

usage: stress_client.py SOCKET SECONDS ID TABLE[,TABLE...]

Prints {"ok": N, "mismatched": N, "failed": N, "errors": [first few]} as JSON.
"""
import json
import sys
import time

import osquery

sock, seconds, cid, tables = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
client = osquery.ExtensionClient(path=sock)
client.open(timeout=5)
em = client.extension_manager_client()
out = {"ok": 0, "mismatched": 0, "failed": 0, "errors": []}
end = time.time() + seconds
i = 0
while time.time() < end:
    table = tables[i % len(tables)]
    token = "%s-%d" % (cid, i)
    r = em.query("SELECT '%s' AS token, count(*) AS n FROM %s" % (token, table))
    i += 1
    if r.status.code != 0:
        out["failed"] += 1
        if len(out["errors"]) < 5:
            out["errors"].append("%s: %s" % (table, r.status.message))
    elif len(r.response) == 1 and r.response[0].get("token") == token:
        out["ok"] += 1
    else:
        out["mismatched"] += 1
client.close()
print(json.dumps(out))
