/* Group 7: allocate and touch 16 MiB at a time, forever. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    for (size_t total = 16;; total += 16) {
        char *block = malloc(16 << 20);
        if (block == NULL) { puts("malloc=NULL"); return 1; }
        memset(block, 1, 16 << 20);
        printf("allocated_mib=%zu\n", total);
        fflush(stdout);
    }
}
