/* Group 4: blocked system calls. Prints name=ok or name=ERRNO for each. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long result) {
    if (result < 0) printf("%s=%s\n", name, strerrorname_np(errno));
    else printf("%s=ok\n", name);
    fflush(stdout);
}

static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

/* 32-bit socketcall(SYS_SOCKET, [AF_VSOCK, SOCK_STREAM, 0]) in a child. */
static void abi32(void) {
    pid_t child = fork();
    if (child == 0) {
        unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        args[0] = 40; args[1] = SOCK_STREAM; args[2] = 0;
        long fd = int80(102, 1, (long)args, 0);
        struct stat st;
        printf("abi32_socketcall=%s\n",
               fd < 0 ? "refused" : (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) ? "socket" : "not-a-socket");
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) printf("abi32=%s\n", sigabbrev_np(WTERMSIG(status)));
    else printf("abi32=exit%d\n", WEXITSTATUS(status));
}

/* PTRACE_TRACEME needs no privilege: only the seccomp profile refuses it.
 * In a child, so that no signal ever stops the main program for its tracer. */
static void ptrace_traceme(void) {
    pid_t child = fork();
    if (child == 0) {
        report("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

int main(void) {
    char params[120] = {0};
    report("io_uring_setup", syscall(SYS_io_uring_setup, 8, params));
    report("vsock", socket(40, SOCK_STREAM, 0));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("unshare_mount", unshare(CLONE_NEWNS));
    char attr[128] = {0};
    report("bpf", syscall(SYS_bpf, 5, attr, sizeof attr));
    *(unsigned int *)(attr + 4) = 112; /* perf_event_attr.size */
    report("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("keyctl", syscall(SYS_keyctl, 1, "ce"));
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("ptrace_pid1", ptrace(PTRACE_ATTACH, 1, 0, 0));
    ptrace_traceme();
    struct timespec now = {0};
    report("clock_settime", clock_settime(CLOCK_REALTIME, &now));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, attr, O_RDONLY));
    report("init_module", syscall(SYS_init_module, attr, sizeof attr, ""));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    abi32();
    printf("done=yes\n");
    return 0;
}
