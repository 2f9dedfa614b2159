#!/usr/bin/python3
"""A FUSE file system for the e2e test of enrichment timeouts: one directory with one file,
`f`. Every request for the attributes of `f` from the daemon under test (the pid in argv[2])
or from a child of it (its file-system helpers) never answers; everyone else gets normal
answers.

usage: hang.py MOUNTPOINT DAEMON_PID
Debian's python3-fusepy names the module `fusepy`; PyPI's names it `fuse`.
"""

import errno
import stat
import sys
import threading
import time

try:
    from fuse import FUSE, FuseOSError, Operations, fuse_get_context
except ImportError:
    from fusepy import FUSE, FuseOSError, Operations, fuse_get_context

DAEMON = int(sys.argv[2])
NOW = time.time()


def status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def from_daemon(pid):
    tgid = status(pid, "Tgid")
    return DAEMON in (tgid, status(tgid, "PPid"))


class Hang(Operations):
    def getattr(self, path, fh=None):
        base = dict(st_uid=0, st_gid=0, st_atime=NOW, st_mtime=NOW, st_ctime=NOW)
        if path == "/":
            return dict(base, st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path != "/f":
            raise FuseOSError(errno.ENOENT)
        if from_daemon(fuse_get_context()[2]):
            threading.Event().wait()  # never answers
        return dict(base, st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=0)

    def readdir(self, path, fh):
        return [".", "..", "f"]

    def chmod(self, path, mode):
        return 0

    def open(self, path, flags):
        return 0

    def read(self, path, size, offset, fh):
        return b""

    def write(self, path, data, offset, fh):
        return len(data)

    def truncate(self, path, length, fh=None):
        return 0


if __name__ == "__main__":
    # No attribute or entry caching: every stat reaches getattr.
    FUSE(Hang(), sys.argv[1], foreground=True, nothreads=False, attr_timeout=0,
         entry_timeout=0, allow_other=True)
