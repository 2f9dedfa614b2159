"""A sample osquery extension on the unchanged osquery Python SDK (PyPI `osquery`).

usage: example_extension.py --socket SOCKET [--timeout S] [--interval S]

It registers the extension `python_example` with three plugins:

- the table `python_words`: one row per word of a fixed list, with its length; a
  `word = 'x'` constraint narrows what is generated (the manager passes the statement's
  constraints in osquery's context), and `generated` says how many rows this call made;
- the logger plugin `python_example_logger`: every result and snapshot line it gets is
  appended to the file `$OSPREY_EXAMPLE_LOG` (standard error when unset), one line each,
  prefixed with its kind;
- the config plugin `python_example_config`: a config whose one scheduled query,
  `python_example_merlin`, reads the extension's own table every second.
"""
import json
import os
import sys

import osquery

WORDS = ["osprey", "falcon", "kestrel", "harrier", "merlin"]


@osquery.register_plugin
class Words(osquery.TablePlugin):
    def name(self):
        return "python_words"

    def columns(self):
        return [
            osquery.TableColumn(name="word", type=osquery.STRING),
            osquery.TableColumn(name="length", type=osquery.INTEGER),
            osquery.TableColumn(name="generated", type=osquery.INTEGER),
        ]

    def generate(self, context):
        wanted = set()
        for c in context.get("constraints", []):
            if c.get("name") == "word":
                wanted.update(
                    i["expr"] for i in c.get("list", []) if int(i.get("op", 0)) == 2
                )
        words = [w for w in WORDS if not wanted or w in wanted]
        return [
            {"word": w, "length": len(w), "generated": len(words)} for w in words
        ]


@osquery.register_plugin
class FileLogger(osquery.LoggerPlugin):
    def name(self):
        return "python_example_logger"

    def _write(self, kind, value):
        line = "%s\t%s\n" % (kind, value.rstrip())
        path = os.environ.get("OSPREY_EXAMPLE_LOG")
        if path:
            with open(path, "a") as f:
                f.write(line)
        else:
            sys.stderr.write(line)
        return osquery.extensions.ttypes.ExtensionStatus(code=0, message="OK")

    def log_string(self, value):
        return self._write("Result", value)

    def log_snapshot(self, value):
        return self._write("Snapshot", value)


@osquery.register_plugin
class Config(osquery.ConfigPlugin):
    def name(self):
        return "python_example_config"

    def content(self):
        config = {
            "schedule": {
                "python_example_merlin": {
                    "query": "SELECT word, length FROM python_words WHERE word = 'merlin';",
                    "interval": 1,
                }
            }
        }
        return [{"python_example": json.dumps(config)}]


if __name__ == "__main__":
    osquery.start_extension(name="python_example", version="1.0.0")
