// Fan-out baseline publisher: publishes to a Redis channel the same records perf/ticker.c
// writes to its pipe, at the same rate and size, over plain TCP on 127.0.0.1. It first waits
// (at most 60 s) until the channel has SUBSCRIBERS subscribers, so every subscriber follows
// from the first record, and ends with one message "end".
//
// Replies are drained without blocking, so a slow Redis delays the next record only when
// the socket buffer is full, as a full pipe would delay the ticker.
//
// Usage: redis_publisher PORT CHANNEL SUBSCRIBERS SECONDS PAYLOAD [INTERVAL_US]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long long monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void send_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t written = send(fd, data, length, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "redis_publisher: send failed: %s\n", strerror(errno));
            exit(1);
        }
        data += written;
        length -= (size_t)written;
    }
}

// Sends a RESP array of bulk strings (RESP2, "Sending commands to a Redis server").
static void send_command(int fd, int count, const char **parts, const size_t *lengths) {
    char header[64];
    send_all(fd, header, (size_t)snprintf(header, sizeof header, "*%d\r\n", count));
    for (int i = 0; i < count; i++) {
        send_all(fd, header, (size_t)snprintf(header, sizeof header, "$%zu\r\n", lengths[i]));
        send_all(fd, parts[i], lengths[i]);
        send_all(fd, "\r\n", 2);
    }
}

// Returns the subscriber count from a PUBSUB NUMSUB reply: "*2 $len channel :count".
static long numsub(int fd, const char *channel) {
    const char *parts[] = {"PUBSUB", "NUMSUB", channel};
    size_t lengths[] = {6, 6, strlen(channel)};
    send_command(fd, 3, parts, lengths);
    char reply[512];
    size_t used = 0;
    while (used < sizeof reply - 1) {
        ssize_t got = recv(fd, reply + used, sizeof reply - 1 - used, 0);
        if (got <= 0) {
            fprintf(stderr, "redis_publisher: PUBSUB NUMSUB got no reply: %s\n", got < 0 ? strerror(errno) : "closed");
            exit(1);
        }
        used += (size_t)got;
        reply[used] = '\0';
        char *count = strrchr(reply, ':');
        if (count && strstr(count, "\r\n")) return atol(count + 1);
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: redis_publisher PORT CHANNEL SUBSCRIBERS SECONDS PAYLOAD [INTERVAL_US]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *channel = argv[2];
    long subscribers = atol(argv[3]);
    double seconds = atof(argv[4]);
    int payload = atoi(argv[5]);
    long interval_us = argc > 6 ? atol(argv[6]) : 1000;
    if (payload < 24 || payload > 65536) {
        fprintf(stderr, "redis_publisher: invalid payload %d: expected 24 to 65536 bytes\n", payload);
        return 2;
    }

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "redis_publisher: connect to 127.0.0.1:%d failed: %s\n", port, strerror(errno));
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    unsigned long long wait_end = monotonic_ns() + 60000000000ull;
    while (numsub(fd, channel) < subscribers) {
        if (monotonic_ns() > wait_end) {
            fprintf(stderr, "redis_publisher: fewer than %ld subscribers on %s after 60 s\n", subscribers, channel);
            return 1;
        }
        usleep(10000);
    }

    char *record = malloc((size_t)payload);
    char drain[65536];
    const char *parts[] = {"PUBLISH", channel, record};
    size_t lengths[] = {7, strlen(channel), (size_t)payload};
    unsigned long long start = monotonic_ns();
    unsigned long long end = start + (unsigned long long)(seconds * 1e9);
    unsigned long long next = start;
    unsigned long published = 0;
    while (next < end) {
        struct timespec wake = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL);

        int digits = snprintf(record, (size_t)payload, "%llu", monotonic_ns());
        memset(record + digits, '.', (size_t)(payload - digits - 1));
        record[payload - 1] = '\n';
        send_command(fd, 3, parts, lengths);
        published++;
        while (recv(fd, drain, sizeof drain, MSG_DONTWAIT) > 0) {
        }
        next += (unsigned long long)interval_us * 1000ull;
    }

    const char *end_parts[] = {"PUBLISH", channel, "end"};
    size_t end_lengths[] = {7, strlen(channel), 3};
    send_command(fd, 3, end_parts, end_lengths);
    shutdown(fd, SHUT_WR);
    struct timeval timeout = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (recv(fd, drain, sizeof drain, 0) > 0) {
    }
    close(fd);
    free(record);
    printf("published=%lu\n", published);
    return 0;
}
