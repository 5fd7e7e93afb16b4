// Fan-out latency source: writes one record every INTERVAL_US microseconds for SECONDS
// seconds to stdout. Each record is PAYLOAD bytes: the CLOCK_MONOTONIC time of the write in
// nanoseconds as decimal digits, padded with '.' and ended by '\n'. Records are written with
// one write(2) each, so a reader that splits on '\n' sees whole records.
//
// Usage: ticker SECONDS PAYLOAD [INTERVAL_US]
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ticker SECONDS PAYLOAD [INTERVAL_US]\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    int payload = atoi(argv[2]);
    long interval_us = argc > 3 ? atol(argv[3]) : 1000;
    if (payload < 24 || payload > 65536) {
        fprintf(stderr, "ticker: invalid payload %d: expected 24 to 65536 bytes\n", payload);
        return 2;
    }

    char *record = malloc((size_t)payload);
    unsigned long long start = monotonic_ns();
    unsigned long long end = start + (unsigned long long)(seconds * 1e9);
    unsigned long long next = start;
    while (next < end) {
        struct timespec wake = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL);

        int digits = snprintf(record, (size_t)payload, "%llu", monotonic_ns());
        memset(record + digits, '.', (size_t)(payload - digits - 1));
        record[payload - 1] = '\n';
        if (write(STDOUT_FILENO, record, (size_t)payload) != payload) return 1;
        next += (unsigned long long)interval_us * 1000ull;
    }
    free(record);
    return 0;
}
