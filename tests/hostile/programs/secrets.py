# ruff: noqa
"""Group 17: what a program can learn of the server's environment."""

import os, subprocess

print(f"env_keys={sorted(os.environ)}")
for pid in ("1", "self"):
    try:
        raw = open(f"/proc/{pid}/environ", "rb").read()
        keys = sorted(item.split(b"=", 1)[0].decode() for item in raw.split(b"\0") if item)
        print(f"environ_{pid}={keys}")
        print(f"environ_{pid}_raw={raw!r}")
    except OSError as e:
        print(f"environ_{pid}=error {e.errno}")
print(subprocess.run(["env"], capture_output=True, text=True).stdout)
print(open("/proc/1/cmdline", "rb").read())
