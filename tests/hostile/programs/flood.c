/* Group 9: one 100 MB line without a newline (short writes are resumed). */
#include <string.h>
#include <unistd.h>

int main(void) {
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    for (long sent = 0; sent < 100L * 1000 * 1000;) {
        ssize_t written = write(1, chunk, sizeof chunk);
        if (written < 0) return 1;
        sent += written;
    }
    return 0;
}
