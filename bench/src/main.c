/*
 * main.c - command line of shmbench: runs one experiment (a transport, a
 * workload, a message size, a fan-out/fan-in width, a PM-QoS configuration)
 * and appends one summary row to a CSV file and the latency percentiles to a
 * second CSV file.  bench/run.sh calls it once per experiment.
 *
 * PM-QoS: with -q held the process writes a 32-bit 0 to /dev/cpu_dma_latency
 * and keeps it open for the whole run, so idle cores are not put into deep
 * halt states; if that fails the row says "unavailable".  The effective
 * system-wide value is read back and recorded in either configuration.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "msg.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PMQOS_DEVICE "/dev/cpu_dma_latency"

struct options {
    struct run_params rp;
    const char *transport;
    const char *csv_path;
    const char *dist_path;
    bool pmqos_held;
    bool list;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbench --list\n"
            "       shmbench -w memcpy -s SIZE [options]\n"
            "       shmbench -t TRANSPORT -w WORKLOAD [options]\n"
            "workloads: pingpong wakeup throughput fanout fanin memcpy rpc rpcload\n"
            "  -s SIZE      message size in bytes, K/M suffix allowed (default 64)\n"
            "  -n N         readers for fanout and throughput (every reader gets every\n"
            "               message), writers for fanin, clients for rpcload (default 1)\n"
            "  -m N         servers for rpcload (default 1)\n"
            "  -d SECONDS   length of the measured phase (default 1)\n"
            "  -i N         at most N measured messages or round trips (default: no limit)\n"
            "  -W N         warm-up messages or round trips (default 1000)\n"
            "  -q held|off  hold a PM-QoS request of 0 (default off)\n"
            "  -c CPUS      comma-separated cores, process i runs on CPUS[i %% n] (default: all)\n"
            "  -T MS        timeout of a single wait (default 3000)\n"
            "  -o FILE      append the summary row to this CSV (default stdout)\n"
            "  -D FILE      append latency percentiles to this CSV\n");
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'K' || *end == 'k')
        v *= 1024;
    else if (*end == 'M' || *end == 'm')
        v *= 1024 * 1024;
    return v > 0 ? (size_t)v : 0;
}

static int parse_cpus(const char *s, struct run_params *rp)
{
    rp->ncpus = 0;
    for (const char *p = s; *p && rp->ncpus < MAX_CPUS;) {
        char *end;
        long cpu = strtol(p, &end, 10);
        if (end == p || cpu < 0)
            return -EINVAL;
        rp->cpus[rp->ncpus++] = (int)cpu;
        p = *end == ',' ? end + 1 : end;
    }
    return rp->ncpus ? 0 : -EINVAL;
}

static void default_cpus(struct run_params *rp)
{
    cpu_set_t set;
    rp->ncpus = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && rp->ncpus < MAX_CPUS; c++)
            if (CPU_ISSET(c, &set))
                rp->cpus[rp->ncpus++] = c;
    if (rp->ncpus == 0)
        rp->cpus[rp->ncpus++] = 0;
}

static void set_defaults(struct options *o)
{
    memset(o, 0, sizeof *o);
    o->rp.wl = WL_PINGPONG;
    o->rp.msg_size = 64;
    o->rp.fan = 1;
    o->rp.servers = 1;
    o->rp.duration_s = 1.0;
    o->rp.max_iters = UINT64_MAX / 4; /* bounded by the duration */
    o->rp.warmup = 1000;
    o->rp.op_timeout_ns = 3000 * (int64_t)1000000;
    o->rp.sleep_min_us = 50;
    o->rp.sleep_max_us = 100;
    default_cpus(&o->rp);
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"list", no_argument, NULL, 'l'},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};
    int c;
    set_defaults(o);
    while ((c = getopt_long(argc, argv, "t:w:s:n:m:d:i:W:q:c:T:o:D:lh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o->transport = optarg; break;
        case 'w': if (workload_parse(optarg, &o->rp.wl)) return -EINVAL; break;
        case 's': o->rp.msg_size = parse_size(optarg); break;
        case 'n': o->rp.fan = (unsigned)atoi(optarg); break;
        case 'm': o->rp.servers = (unsigned)atoi(optarg); break;
        case 'd': o->rp.duration_s = atof(optarg); break;
        case 'i': o->rp.max_iters = strtoull(optarg, NULL, 10); break;
        case 'W': o->rp.warmup = strtoull(optarg, NULL, 10); break;
        case 'q': o->pmqos_held = strcmp(optarg, "held") == 0; break;
        case 'c': if (parse_cpus(optarg, &o->rp)) return -EINVAL; break;
        case 'T': o->rp.op_timeout_ns = atoll(optarg) * 1000000; break;
        case 'o': o->csv_path = optarg; break;
        case 'D': o->dist_path = optarg; break;
        case 'l': o->list = true; break;
        case 'h': usage(stdout); exit(0);
        default: return -EINVAL;
        }
    }
    if (o->list)
        return 0;
    if (o->rp.msg_size < MSG_MIN_SIZE || o->rp.fan < 1 || o->rp.servers < 1 || o->rp.max_iters < 1 ||
        (o->rp.wl != WL_MEMCPY && !o->transport))
        return -EINVAL;
    return 0;
}

static void list_transports(void)
{
    const struct transport *tps[64];
    size_t n = bench_transports(tps, 64);
    static const char *const cap_names[] = {"latency", "stream", "broadcast", "multi-writer",
                                            "blocking", "lossy", "zero-copy", "in-place", "rpc"};
    for (size_t i = 0; i < n; i++) {
        printf("%s\t%d\t", tps[i]->name, (int)tps[i]->group);
        const char *sep = "";
        for (unsigned b = 0; b < sizeof cap_names / sizeof cap_names[0]; b++)
            if (tps[i]->caps & (1u << b)) {
                printf("%s%s", sep, cap_names[b]);
                sep = ",";
            }
        printf("\t%zu\t%s\n", tps[i]->max_msg, tps[i]->summary);
    }
}

/* ---- PM-QoS ---- */

static int pmqos_hold(void)
{
    int fd = open(PMQOS_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int32_t zero = 0;
    if (write(fd, &zero, sizeof zero) != (ssize_t)sizeof zero) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd; /* kept open until the process exits */
}

/* Effective system-wide request in microseconds, or -1 if unreadable. */
static long pmqos_effective(void)
{
    int fd = open(PMQOS_DEVICE, O_RDONLY | O_CLOEXEC);
    int32_t v = -1;
    if (fd < 0)
        return -1;
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        v = -1;
    close(fd);
    return v;
}

/* ---- CSV output ---- */

static FILE *open_csv(const char *path, const char *header)
{
    if (!path)
        return NULL;
    struct stat st;
    bool fresh = stat(path, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(path, "a");
    if (f && fresh)
        fprintf(f, "%s\n", header);
    return f;
}

static const char *transport_label(const struct options *o)
{
    return o->rp.wl == WL_MEMCPY ? "limit-memcpy" : o->transport;
}

static const char *workload_label(const struct options *o)
{
    return o->rp.wl == WL_MEMCPY ? "throughput" : workload_name(o->rp.wl);
}

static void csv_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char *summary_header =
    "transport,workload,pmqos,msg_size,writers,readers,mode,status,samples,lost,min_ns,median_ns,"
    "p99_ns,p999_ns,max_ns,mean_ns,msgs_per_s,bytes_per_s,seconds,qos_us,note";

static void write_summary(FILE *f, const struct options *o, const struct run_result *rr, long qos_us)
{
    const struct hist *h = rr->lat;
    bool ok = strcmp(rr->status, "ok") == 0, lat = ok && h->count > 0;
    double rate = ok && rr->seconds > 0 ? (double)rr->msgs / rr->seconds : 0;
    if (lat && (o->rp.wl == WL_PINGPONG || o->rp.wl == WL_RPC))
        rate = 1e9 / hist_mean(h); /* round trips per second */
    fprintf(f, "%s,%s,%s,%zu,%u,%u,%s,%s,%llu,%llu,", transport_label(o), workload_label(o),
            o->pmqos_held ? "held" : "off", rr->msg_size, rr->writers, rr->readers, rr->mode, rr->status,
            (unsigned long long)(lat ? h->count : rr->msgs), (unsigned long long)rr->lost);
    if (lat)
        fprintf(f, "%llu,%llu,%llu,%llu,%llu,%.1f,", (unsigned long long)h->min,
                (unsigned long long)hist_quantile(h, 0.5), (unsigned long long)hist_quantile(h, 0.99),
                (unsigned long long)hist_quantile(h, 0.999), (unsigned long long)h->max, hist_mean(h));
    else
        fputs(",,,,,,", f);
    if (ok)
        fprintf(f, "%.1f,%.1f,%.3f,", rate, rate * (double)rr->msg_size, rr->seconds);
    else
        fputs(",,,", f);
    fprintf(f, "%ld,", qos_us);
    csv_quote(f, rr->note);
    fputc('\n', f);
}

/* Percentiles on a "number of nines" grid, for distribution plots. */
static void write_distribution(FILE *f, const struct options *o, const struct run_result *rr)
{
    const struct hist *h = rr->lat;
    for (int k = 0;; k++) {
        double q = 1.0 - pow(10.0, -k / 8.0);
        if (1.0 / (1.0 - q) > (double)h->count)
            break;
        fprintf(f, "%s,%s,%s,%zu,%u,%u,%.6f,%llu\n", transport_label(o), workload_label(o),
                o->pmqos_held ? "held" : "off", rr->msg_size, rr->writers, rr->readers, q * 100,
                (unsigned long long)hist_quantile(h, q));
    }
    fprintf(f, "%s,%s,%s,%zu,%u,%u,100,%llu\n", transport_label(o), workload_label(o),
            o->pmqos_held ? "held" : "off", rr->msg_size, rr->writers, rr->readers,
            (unsigned long long)h->max);
}

static void report(const struct options *o, const struct run_result *rr, long qos_us)
{
    FILE *f = open_csv(o->csv_path, summary_header);
    write_summary(f ? f : stdout, o, rr, qos_us);
    if (f)
        fclose(f);
    if (o->dist_path && strcmp(rr->status, "ok") == 0 && rr->lat->count > 0) {
        FILE *d = open_csv(o->dist_path, "transport,workload,pmqos,msg_size,writers,readers,percentile,value_ns");
        if (d) {
            write_distribution(d, o, rr);
            fclose(d);
        }
    }
    fprintf(stderr, "%-14s %-10s %-4s %7zu B %ux%u %-8s %s %s\n", transport_label(o), workload_label(o),
            o->pmqos_held ? "held" : "off", rr->msg_size, rr->writers, rr->readers, rr->status,
            strcmp(rr->status, "ok") == 0 ? "" : "-", rr->note);
}

static int run(struct options *o, struct run_result *rr)
{
    if (o->rp.wl == WL_MEMCPY)
        return run_memcpy(&o->rp, rr);
    o->rp.tp = bench_find_transport(o->transport);
    if (!o->rp.tp) {
        snprintf(rr->status, sizeof rr->status, "n/a");
        snprintf(rr->note, sizeof rr->note, "transport not built");
        return 0;
    }
    return run_experiment(&o->rp, rr);
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (o.list) {
        list_transports();
        return 0;
    }
    struct run_result rr;
    memset(&rr, 0, sizeof rr);
    rr.lat = malloc(sizeof *rr.lat);
    if (!rr.lat)
        return 1;
    hist_init(rr.lat);
    rr.msg_size = o.rp.msg_size;
    rr.writers = rr.readers = 1;
    snprintf(rr.mode, sizeof rr.mode, "native");
    int rc = 0;
    if (o.pmqos_held && (rc = pmqos_hold()) < 0) {
        snprintf(rr.status, sizeof rr.status, "unavailable");
        snprintf(rr.note, sizeof rr.note, "PM-QoS: cannot hold " PMQOS_DEVICE ": %s", strerror(-rc));
        report(&o, &rr, pmqos_effective());
        return 0;
    }
    long qos_us = pmqos_effective();
    if (!o.pmqos_held && qos_us >= 0 && qos_us < 2000000000)
        fprintf(stderr, "note: another process holds a PM-QoS request of %ld us\n", qos_us);
    rc = run(&o, &rr);
    report(&o, &rr, qos_us);
    return strcmp(rr.status, "ok") == 0 || strcmp(rr.status, "n/a") == 0 ? 0 : 1;
}
