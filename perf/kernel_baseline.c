// Job-throughput baseline: the kernel work of one job done directly in a loop, with no
// daemon, no RPC and no logging. For each job it creates a cgroup in every cgroup v1
// controller that jobd uses, writes a CPU and a memory limit, starts `true` inside it with
// vfork (the child writes its pid into each cgroup.procs before exec), reaps it and removes
// the cgroups. The rate it prints is the ceiling for jobd's job throughput on this machine.
//
// Usage: kernel_baseline SECONDS
// Output: one line "jobs=N seconds=S rate=R" on stdout.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *controllers[] = {"cpu", "cpuacct", "memory", "pids", "freezer", "blkio"};
enum { controller_count = sizeof(controllers) / sizeof(controllers[0]) };

static char bases[controller_count][512];

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Finds this process's cgroup path in the hierarchy of `controller` from /proc/self/cgroup.
static int own_cgroup(const char *controller, char *out, size_t size) {
    FILE *file = fopen("/proc/self/cgroup", "r");
    if (!file) return -1;
    char line[1024];
    int found = -1;
    while (fgets(line, sizeof line, file)) {
        char *names = strchr(line, ':');
        char *path = names ? strchr(names + 1, ':') : NULL;
        if (!path) continue;
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        for (char *name = strtok(names + 1, ","); name; name = strtok(NULL, ",")) {
            if (strcmp(name, controller) == 0) {
                snprintf(out, size, "%s", strcmp(path, "/") == 0 ? "" : path);
                found = 0;
            }
        }
    }
    fclose(file);
    return found;
}

static void write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) {
        fprintf(stderr, "kernel_baseline: write %s to %s failed: %s\n", value, path, strerror(errno));
        exit(1);
    }
    close(fd);
}

static void run_job(unsigned long index) {
    char path[4096];
    int procs[controller_count];

    for (int c = 0; c < controller_count; c++) {
        snprintf(path, sizeof path, "%s/job-%lu", bases[c], index);
        if (mkdir(path, 0755) != 0) {
            fprintf(stderr, "kernel_baseline: mkdir %s failed: %s\n", path, strerror(errno));
            exit(1);
        }
    }
    snprintf(path, sizeof path, "%s/job-%lu/cpu.cfs_period_us", bases[0], index);
    write_file(path, "100000");
    snprintf(path, sizeof path, "%s/job-%lu/cpu.cfs_quota_us", bases[0], index);
    write_file(path, "50000");
    snprintf(path, sizeof path, "%s/job-%lu/memory.limit_in_bytes", bases[2], index);
    write_file(path, "268435456");
    snprintf(path, sizeof path, "%s/job-%lu/pids.max", bases[3], index);
    write_file(path, "1024");
    for (int c = 0; c < controller_count; c++) {
        snprintf(path, sizeof path, "%s/job-%lu/cgroup.procs", bases[c], index);
        procs[c] = open(path, O_WRONLY | O_CLOEXEC);
    }

    pid_t pid = vfork();
    if (pid == 0) {
        char pid_text[32];
        int length = snprintf(pid_text, sizeof pid_text, "%d", getpid());
        for (int c = 0; c < controller_count; c++) {
            if (write(procs[c], pid_text, (size_t)length) < 0) _exit(126);
        }
        char *argv[] = {"true", NULL};
        execv("/bin/true", argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kernel_baseline: job %lu failed with status %d\n", index, status);
        exit(1);
    }

    for (int c = 0; c < controller_count; c++) {
        close(procs[c]);
        snprintf(path, sizeof path, "%s/job-%lu", bases[c], index);
        // A v1 cgroup can stay busy for a moment after its last process was reaped, so
        // EBUSY is retried, for at most one second.
        double deadline = now_seconds() + 1;
        while (rmdir(path) != 0) {
            if (errno != EBUSY || now_seconds() > deadline) {
                fprintf(stderr, "kernel_baseline: rmdir %s failed: %s\n", path, strerror(errno));
                exit(1);
            }
        }
    }
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    for (int c = 0; c < controller_count; c++) {
        char own[400];
        if (own_cgroup(controllers[c], own, sizeof own) != 0) {
            fprintf(stderr, "kernel_baseline: no cgroup v1 hierarchy for %s\n", controllers[c]);
            return 1;
        }
        snprintf(bases[c], sizeof bases[c], "/sys/fs/cgroup/%s%s/jobworker-bench-%d", controllers[c], own, getpid());
        if (mkdir(bases[c], 0755) != 0) {
            fprintf(stderr, "kernel_baseline: mkdir %s failed: %s\n", bases[c], strerror(errno));
            return 1;
        }
    }

    unsigned long jobs = 0;
    double start = now_seconds();
    while (now_seconds() - start < seconds) {
        run_job(jobs++);
    }
    double elapsed = now_seconds() - start;

    for (int c = 0; c < controller_count; c++) rmdir(bases[c]);
    printf("jobs=%lu seconds=%.3f rate=%.1f\n", jobs, elapsed, (double)jobs / elapsed);
    return 0;
}
