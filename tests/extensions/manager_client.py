"""Talks to an extension manager with the osquery Python SDK (PyPI `osquery`), unchanged.

usage: manager_client.py SOCKET

Prints one JSON object: what each ExtensionManager call returned, as the SDK decoded it.
"""
import json
import sys

import osquery
from osquery.extensions.ttypes import InternalExtensionInfo


def status(s):
    return {"code": s.code, "message": s.message, "uuid": s.uuid}


def response(r):
    return {"status": status(r.status), "response": r.response}


def main():
    client = osquery.ExtensionClient(path=sys.argv[1])
    client.open(timeout=5)
    em = client.extension_manager_client()
    out = {}
    out["ping"] = status(em.ping())
    out["query"] = response(em.query("SELECT 1 AS one, 'x' AS two, NULL AS three"))
    out["bad_query"] = response(em.query("SELECT * FROM no_such_table"))
    out["columns"] = response(em.getQueryColumns("SELECT pid, name FROM processes"))
    options = em.options()
    out["option"] = {
        k: {"value": v.value, "default": v.default_value, "type": v.type}
        for k, v in options.items()
        if k in ("disable_extensions", "events_expiry")
    }
    info = InternalExtensionInfo(
        name="sdk_probe", version="1.0", sdk_version="1.8.0", min_sdk_version="1.8.0"
    )
    registry = {"table": {"probe_table": [{"id": "column", "name": "c", "type": "TEXT", "op": "0"}]}}
    first = em.registerExtension(info, registry)
    out["register"] = status(first)
    # The same name again while the first does not answer pings (it serves no socket):
    # the first is replaced.
    again = em.registerExtension(info, registry)
    out["register_again"] = status(again)
    out["register_core"] = status(
        em.registerExtension(
            InternalExtensionInfo(name="other", version="1", sdk_version="1", min_sdk_version="1"),
            {"table": {"processes": []}},
        )
    )
    out["extensions"] = {str(k): v.name for k, v in em.extensions().items()}
    out["call_columns"] = response(em.call("table", "time", {"action": "columns"}))
    out["deregister_replaced"] = status(em.deregisterExtension(first.uuid))
    out["deregister"] = status(em.deregisterExtension(again.uuid))
    out["extensions_after"] = {str(k): v.name for k, v in em.extensions().items()}
    client.close()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
