"""Extension storage through the manager, with the osquery Python SDK (PyPI `osquery`).

usage: storage_client.py SOCKET NAME MODE

Registers an extension NAME (no tables), then by MODE:
- `versions`: put, get, a get with another schema version (refused), a migration, a scan,
  an unknown op; prints what each returned as one JSON object;
- `batches`: writes batches of 2000 keys `b<n>/<i>` (n = 0, 1, ...), printing `acked n`
  after each one the manager accepted, until 40 batches or an error;
- `count`: prints {"b<n>/": keys} for n below 60, as JSON.
"""
import json
import sys

import osquery
from osquery.extensions.ttypes import InternalExtensionInfo

sock, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
client = osquery.ExtensionClient(path=sock)
client.open(timeout=5)
em = client.extension_manager_client()
st = em.registerExtension(
    InternalExtensionInfo(name=name, version="1", sdk_version="1", min_sdk_version="1"), {}
)
uuid = str(st.uuid)


def call(op, schema="1", **req):
    req.update({"uuid": uuid, "schema": schema})
    r = em.call("storage", op, req)
    return {"code": r.status.code, "message": r.status.message, "rows": r.response}


if mode == "versions":
    out = {
        "put": call("put", key="k1", value="v1"),
        "get": call("get", key="k1"),
        "missing": call("get", key="nope"),
        "other_version": call("get", schema="2", key="k1"),
        "migrate": call("get", schema="2", migrate="1", key="k1"),
        "after_migrate": call("get", schema="2", key="k1"),
        "old_version": call("get", schema="1", key="k1"),
        "scan": call("scan", schema="2", prefix="k"),
        "unknown": call("frobnicate", schema="2"),
    }
    print(json.dumps(out, sort_keys=True))
elif mode == "batches":
    for n in range(40):
        ops = [{"op": "put", "key": "b%d/%d" % (n, i), "value": "x" * 64} for i in range(2000)]
        r = call("batch", ops=json.dumps(ops))
        if r["code"] != 0:
            break
        print("acked %d" % n, flush=True)
elif mode == "count":
    out = {}
    for n in range(60):
        r = call("scan", prefix="b%d/" % n, limit="100000")
        out["b%d/" % n] = len(r["rows"])
    print(json.dumps(out))
client.close()
