# ruff: noqa
"""Group 8: write to /, /work and $HOME; a 1 GB file; 100k small files."""

import errno, os, subprocess

MIB = 1024 * 1024


def attempt(key, action):
    try:
        result = action()
        print(f"{key}=ok" if result is None else f"{key}={result}", flush=True)
    except OSError as e:
        print(f"{key}={errno.errorcode.get(e.errno, e.errno)}", flush=True)


attempt("write_root", lambda: open("/big", "w"))
attempt("write_work", lambda: open("/work/big", "w"))
attempt("write_home", lambda: open(os.path.join(os.environ["HOME"], "note"), "w").close())


def big_file():  # Python ignores SIGXFSZ, so the write fails with EFBIG
    written = 0
    try:
        with open("/tmp/big", "wb") as f:
            for _ in range(1024):
                f.write(b"\0" * MIB)
                written += MIB
    finally:
        print(f"big_file_mib={written // MIB}")
        os.unlink("/tmp/big")


attempt("big_file", big_file)
# A program that does not ignore it is killed by SIGXFSZ.
head = subprocess.run(["sh", "-c", "head -c 1G /dev/zero > /tmp/big2"])
print(f"head_returncode={head.returncode}")
os.unlink("/tmp/big2")


def fill_tmp():  # 8 MiB files until the tmpfs is full
    for i in range(64):
        with open(f"/tmp/fill{i}", "wb") as f:
            for _ in range(8):
                f.write(b"\1" * MIB)


attempt("fill_tmp", fill_tmp)
for i in range(64):
    if os.path.exists(f"/tmp/fill{i}"):
        os.unlink(f"/tmp/fill{i}")


def many_files():  # one system call per empty file
    os.mkdir("/tmp/many")
    for i in range(100_000):
        try:
            os.mknod(f"/tmp/many/{i}")
        except OSError:
            print(f"small_files={'thousands' if i > 1000 else i}")
            raise
    print("small_files=100000")


attempt("many_files", many_files)
print("done=yes")
