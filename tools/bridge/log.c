/* Log lines (one per state change) and the counters printed as JSON. */
#define _GNU_SOURCE
#include "bridge.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void br_log(const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s.%03ldZ shmchan-bridge: ", when, ts.tv_nsec / 1000000);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

#define LOAD(x) ((unsigned long long)atomic_load(&(x)))

/* One line: {"stats":[{"dir":..,"kind":..,"channel":..,"subject":..,counters..},...]} */
void br_stats_print(const br_config *cfg, FILE *f)
{
    pthread_mutex_lock(&log_lock);
    fprintf(f, "{\"host\":\"%s\",\"links\":[", cfg->host);
    for (int i = 0; i < cfg->nlinks; i++) {
        const br_link *l = &cfg->links[i];
        br_counters *c = (br_counters *)&l->c;
        fprintf(f,
                "%s{\"dir\":\"%s\",\"kind\":\"%s\",\"mode\":\"%s\",\"channel\":\"%s\","
                "\"subject\":\"%s\",\"msgs\":%llu,\"nats_msgs\":%llu,\"bytes\":%llu,\"stale\":%llu,\"dups\":%llu,"
                "\"loops\":%llu,\"malformed\":%llu,\"oversize\":%llu,\"full\":%llu,"
                "\"lost\":%llu,\"errors\":%llu}",
                i ? "," : "", l->dir == BR_EXPORT ? "export" : "import",
                l->kind == BR_LATEST ? "latest" : "queue",
                l->mode == BR_CORE ? "core" : "jetstream", l->channel, l->subject,
                LOAD(c->msgs), LOAD(c->nats_msgs), LOAD(c->bytes), LOAD(c->stale), LOAD(c->dups), LOAD(c->loops),
                LOAD(c->malformed), LOAD(c->oversize), LOAD(c->full), LOAD(c->lost),
                LOAD(c->errors));
    }
    fprintf(f, "]}\n");
    fflush(f);
    pthread_mutex_unlock(&log_lock);
}
