"""An osquery extension written against the unchanged osquery Python SDK (PyPI `osquery`):
one table, `probe_table`, whose rows say what the manager asked.

usage: [PROBE_SUFFIX=s] probe_extension.py --socket SOCKET [--timeout S] [--interval S]

With PROBE_SUFFIX set (the SDK owns the command line), the extension is `probe_<s>` and its
table `probe_table_<s>`, so that many can run at once. Each generate returns two rows (n = 1 and 2) with the context the manager passed, as JSON
with sorted keys, so a test can check the constraints osquery's context format carries.
"""
import json
import os

import osquery

SUFFIX = os.environ.get("PROBE_SUFFIX", "")


@osquery.register_plugin
class ProbeTable(osquery.TablePlugin):
    def name(self):
        return "probe_table_" + SUFFIX if SUFFIX else "probe_table"

    def columns(self):
        return [
            osquery.TableColumn(name="n", type=osquery.INTEGER),
            osquery.TableColumn(name="word", type=osquery.STRING),
            osquery.TableColumn(name="ctx", type=osquery.STRING),
        ]

    def generate(self, context):
        ctx = json.dumps(context, sort_keys=True)
        return [
            {"n": 1, "word": "one", "ctx": ctx},
            {"n": 2, "word": "two", "ctx": ctx},
        ]


if __name__ == "__main__":
    osquery.start_extension(name="probe_" + SUFFIX if SUFFIX else "probe", version="1.0.0")
