/* Group 6: every process forks forever; the first refusal is reported. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    int reported = 0;
    for (;;) {
        if (fork() < 0 && !reported) {
            printf("fork=%s\n", strerrorname_np(errno));
            fflush(stdout);
            reported = 1;
        }
    }
}
