# ruff: noqa
"""Group 18: write a marker everywhere writable (run N) or look for them (run N+1)."""

import os, sys

mode, token = sys.argv[1], sys.argv[2]
skip = ("/proc", "/sys")


def walk():
    # /proc and /sys are never written to; walking them under gVisor can take
    # the run's whole CPU budget.
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        yield root, files


marker = f".ce-persist-{token}"
if mode == "write":
    written = []
    for directory in [root for root, _ in walk() if os.access(root, os.W_OK)]:
        try:
            with open(os.path.join(directory, marker), "w") as f:
                f.write(token)
            written.append(directory)
        except OSError:
            pass
    print(f"written={sorted(written)}")
else:
    found = [
        d
        for d in ("/tmp", "/dev/shm", "/work", "/", "/var/tmp", os.environ.get("HOME", "/tmp"))
        if os.path.exists(os.path.join(d, marker))
    ]
    found += [root for root, files in walk() if marker in files]
    print(f"found={sorted(set(found))}")
