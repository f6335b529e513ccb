# ruff: noqa
"""Group 18: write a marker everywhere writable (run N) or look for them (run N+1)."""

import os, sys

mode, token = sys.argv[1], sys.argv[2]
skip = ("/proc", "/sys")
candidates = []
for root, dirs, _ in os.walk("/", onerror=lambda e: None):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
    if os.access(root, os.W_OK):
        candidates.append(root)
marker = f".ce-persist-{token}"
if mode == "write":
    written = []
    for directory in candidates:
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
    found += [
        r
        for r, _, files in os.walk("/", onerror=lambda e: None)
        if marker in files and not r.startswith(skip)
    ]
    print(f"found={sorted(set(found))}")
