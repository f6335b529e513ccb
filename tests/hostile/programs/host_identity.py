"""Group 1: what a program reads of the host's identity: its boot line and boot id."""

import errno


def read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read().strip()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return data.decode(errors="replace") if data else "empty"


print("cmdline=" + read("/proc/cmdline"))
print("boot_id=" + read("/proc/sys/kernel/random/boot_id"))
print("done=yes")
