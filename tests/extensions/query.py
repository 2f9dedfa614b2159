"""Runs one SQL statement through an extension manager with the osquery Python SDK.

usage: query.py SOCKET SQL

Prints {"status": {"code", "message"}, "response": [rows]} as JSON.
"""
import json
import sys

import osquery

client = osquery.ExtensionClient(path=sys.argv[1])
client.open(timeout=5)
r = client.extension_manager_client().query(sys.argv[2])
client.close()
print(json.dumps({"status": {"code": r.status.code, "message": r.status.message},
                  "response": r.response}, sort_keys=True))
