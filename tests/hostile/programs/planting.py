# ruff: noqa
"""Group 2: plant symlinks and hardlinks, rename in a loop, in /work and /tmp."""

import errno, os, sys, time

host_target = sys.argv[1]  # a real file on the host, next to the staging folders


def attempt(key, action):
    try:
        action()
        print(f"{key}=ok", flush=True)
    except OSError as e:
        print(f"{key}={errno.errorcode.get(e.errno, e.errno)}", flush=True)


entry = "/work/main.py"
attempt("symlink_work", lambda: os.symlink(host_target, "/work/evil"))
attempt("hardlink_work", lambda: os.link(entry, "/work/hard"))
attempt("rename_work", lambda: os.rename(entry, "/work/moved.py"))
attempt("unlink_work", lambda: os.unlink(entry))
attempt("chmod_work", lambda: os.chmod(entry, 0o777))
attempt("write_entry", lambda: open(entry, "a"))
attempt("symlink_tmp", lambda: os.symlink(host_target, "/tmp/evil"))
attempt("write_through_symlink", lambda: open("/tmp/evil", "w"))
attempt("symlink_to_work", lambda: os.symlink("/work", "/tmp/work-link"))
attempt("write_via_work_link", lambda: open("/tmp/work-link/x", "w"))
attempt("hardlink_tmp", lambda: os.link(entry, "/tmp/hard"))
open("/tmp/a", "w").close()
renames, began = 0, time.monotonic()
while time.monotonic() - began < 1.0:
    os.rename("/tmp/a", "/tmp/b")
    os.symlink("/work", "/tmp/a")
    os.unlink("/tmp/a")
    os.rename("/tmp/b", "/tmp/a")
    renames += 1
print(f"renames={'many' if renames > 100 else renames}")
print("done=yes")
