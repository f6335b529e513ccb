# ruff: noqa
"""Groups 1, 3 and 5: the sandbox's configuration, read from inside."""

import ctypes, errno, os, socket, stat


def name(e):
    return (
        errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__
    )


def attempt(key, action):
    try:
        action()
        print(f"{key}=ok", flush=True)
    except socket.gaierror as e:
        print(f"{key}=gaierror", flush=True)
    except OSError as e:
        print(f"{key}={name(e)}", flush=True)


status = dict(
    line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line
)
print(f"ids={os.getuid()},{os.geteuid()},{os.getgid()},{os.getegid()},{sorted(os.getgroups())}")
for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    print(f"{cap}={status.get(cap, '?').strip()}")
libc = ctypes.CDLL(None, use_errno=True)
print(f"no_new_privs={libc.prctl(39, 0, 0, 0, 0)}")  # PR_GET_NO_NEW_PRIVS
print(f"Seccomp={status.get('Seccomp', '?').strip()}")
mounts = {fields[1]: fields[3].split(",") for fields in (l.split() for l in open("/proc/mounts"))}
for point in ("/", "/work", "/tmp", "/dev/shm"):
    print(f"mount{point.replace('/', '_')}={'ro' if 'ro' in mounts.get(point, []) else 'rw'}")
attempt("write_root", lambda: open("/ce-probe", "w"))
attempt("write_work", lambda: open("/work/ce-probe", "w"))
attempt("write_etc", lambda: open("/etc/passwd", "a"))
# group 3: the running binaries, opened for writing
attempt("self_exe", lambda: os.open("/proc/self/exe", os.O_WRONLY))
attempt("pid1_exe", lambda: os.open("/proc/1/exe", os.O_WRONLY))


def via_fd():
    fd = os.open("/proc/1/exe", os.O_PATH)
    os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)


attempt("pid1_exe_via_fd", via_fd)
# group 5: engine sockets, egress, metadata, raw and packet sockets
found = []
for top in (
    "/run",
    "/var",
    "/tmp",
    "/dev",
    "/etc",
    "/opt",
    "/usr",
    "/home",
    "/root",
    "/srv",
    "/mnt",
):
    for root, dirs, files in os.walk(top, onerror=lambda e: None):
        for entry in dirs + files:
            try:
                if stat.S_ISSOCK(os.lstat(os.path.join(root, entry)).st_mode):
                    found.append(os.path.join(root, entry))
            except OSError:
                pass
print(f"sockets={found}")


def connect(address, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(address)


attempt("tcp_egress", lambda: connect(("1.1.1.1", 443)))
attempt("engine_tcp", lambda: connect(("172.17.0.1", 2375)))
attempt("metadata", lambda: connect(("169.254.169.254", 80)))
attempt("ipv6_egress", lambda: connect(("2606:4700:4700::1111", 443), socket.AF_INET6))


def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("8.8.8.8", 53))


attempt("udp_egress", udp)
attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
attempt(
    "raw_socket",
    lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close(),
)
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close())
print(f"interfaces={sorted(n for _, n in socket.if_nameindex())}")
print("done=yes")
