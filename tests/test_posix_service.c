/*
 * Services against a hostile peer that writes the shared memory directly
 * (docs/services.md, "Hostile peers"): a forged header geometry with a
 * valid checksum, and random words written into the server table, the
 * rings' control blocks, slot tables and records while a client and a
 * server go on working. Nothing may crash or hang, and every call must end
 * with a code of its contract. POSIX only: the attacker maps the channel's
 * file while it is in use.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/layout.h"
#include "t.h"

#define OFF_CHECKSUM offsetof(shmchan__hdr, checksum)

static void
forge_field(const char *path, size_t off, size_t width, uint64_t v)
{
    uint8_t h[SHMCHAN__HDR_SIZE];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    T_TRUE(fd >= 0);
    T_TRUE(pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
    memcpy(h + off, &v, width); /* little-endian: the low bytes */
    uint32_t sum = 2166136261u;
    for (size_t i = 0; i < OFF_CHECKSUM; i++) {
        sum = (sum ^ h[i]) * 16777619u;
    }
    memcpy(h + OFF_CHECKSUM, &sum, sizeof(sum));
    T_TRUE(pwrite(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
    close(fd);
}

static const char *
make_service_file(void)
{
    const char *p = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE | SHMCHAN_SERVER);
    o.max_readers = 2;
    o.max_writers = 2;
    o.max_msg = 128;
    shmchan_service *s = NULL;
    T_OK(shmchan_service_open(p, &o, &s));
    shmchan_service_close(s);
    return p;
}

/* Geometry that no library would write, with the checksum redone: every
 * open and inspection says ECORRUPT (or ETRUNCATED), nothing is mapped
 * beyond the region. */
TEST(service_hostile_geometry)
{
    static const struct {
        size_t off, width;
        uint64_t value;
    } lies[] = {
        {offsetof(shmchan__hdr, max_writers), 4, 4000},
        {offsetof(shmchan__hdr, max_writers), 4, 0},
        {offsetof(shmchan__hdr, max_readers), 4, 70},
        {offsetof(shmchan__hdr, max_readers), 4, 100000},
        {offsetof(shmchan__hdr, max_msg), 8, 1u << 20},
        {offsetof(shmchan__hdr, max_msg), 8, UINT64_C(1) << 62},
        {offsetof(shmchan__hdr, capacity), 8, 4096},
        {offsetof(shmchan__hdr, capacity), 8, (UINT64_C(1) << 20) + 16},
        {offsetof(shmchan__hdr, nbuf), 4, 4},
        {offsetof(shmchan__hdr, policy), 4, SHMCHAN_POLICY_OVERWRITE},
        {offsetof(shmchan__hdr, ctl_size), 8, 64},
    };
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        const char *p = make_service_file();
        forge_field(p, lies[i].off, lies[i].width, lies[i].value);
        for (int server = 0; server < 2; server++) {
            shmchan_opts o = t_opts(SHMCHAN_FILE | (server ? SHMCHAN_SERVER : 0));
            shmchan_service *s = NULL;
            int rc = shmchan_service_open(p, &o, &s);
            if (s != NULL) {
                t_fail(__FILE__, __LINE__, "lie %zu opened (rc %d)", i, rc);
            }
            T_TRUE(rc == SHMCHAN_ECORRUPT || rc == SHMCHAN_ETRUNCATED);
        }
        shmchan_info info = {.struct_size = sizeof(info)};
        int rc = shmchan_info_get(p, SHMCHAN_FILE, &info);
        T_TRUE(rc == SHMCHAN_ECORRUPT || rc == SHMCHAN_ETRUNCATED);
    }
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

/* A word an attacker would try: random, small, near a position, all ones. */
static uint64_t
nasty(uint64_t *seed, uint64_t near)
{
    switch (rnd(seed) % 6) {
    case 0: return rnd(seed);
    case 1: return rnd(seed) % 64;
    case 2: return near + (rnd(seed) % 9) * 16 - 64;
    case 3: return UINT64_MAX;
    case 4: return 0;
    default: return (rnd(seed) & 0xffffffffu) << 32 | 1u;
    }
}

static bool
allowed(int rc)
{
    return rc == SHMCHAN_OK || rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT ||
           rc == SHMCHAN_ESTATE || rc == SHMCHAN_EPEERDIED || rc == SHMCHAN_ECORRUPT ||
           rc == SHMCHAN_EMSGSIZE;
}

TEST(service_hostile_random_writes)
{
    const char *p = make_service_file();
    shmchan_opts o = t_opts(SHMCHAN_FILE | SHMCHAN_SERVER);
    shmchan_service *srv = NULL, *cl = NULL;
    T_OK(shmchan_service_open(p, &o, &srv));
    o = t_opts(SHMCHAN_FILE);
    T_OK(shmchan_service_open(p, &o, &cl));
    size_t size = 0;
    uint8_t *base = t_map_file(p, &size);
    const shmchan__hdr *h = (const shmchan__hdr *)base;
    uint64_t ctl = h->ctl_off, data = h->data_off, cap = h->capacity;
    uint32_t S = h->max_readers, C = h->max_writers;
    uint64_t tables = round_up((uint64_t)(S + C) * SHMCHAN__CACHE_LINE, SHMCHAN__PAGE);
    uint64_t servers = data + tables + cap;
    uint64_t replies = servers + round_up((uint64_t)S * SHMCHAN__CACHE_LINE, SHMCHAN__PAGE);
    uint64_t rctl = round_up(sizeof(shmchan__queue_ctl), SHMCHAN__PAGE);
    uint64_t rtables = round_up((uint64_t)(1 + S) * SHMCHAN__CACHE_LINE, SHMCHAN__PAGE);
    uint64_t block = (size - replies) / C;
    struct {
        uint64_t off, len;
    } areas[] = {
        {ctl, sizeof(shmchan__service_ctl)},
        {data, tables},
        {data + tables, 4096},
        {servers, (uint64_t)S * SHMCHAN__CACHE_LINE},
        {replies, sizeof(shmchan__queue_ctl)},
        {replies + rctl, rtables},
        {replies + rctl + rtables, 4096},
        {replies + block, sizeof(shmchan__queue_ctl)},
    };
    uint64_t seed = 0x5eed5eed12345ull;
    uint8_t buf[256];
    shmchan_request rq;
    bool holding = false;
    int oks = 0;
    for (int it = 0; it < 3000; it++) {
        if (it % 3 == 0) {
            size_t a = (size_t)(rnd(&seed) % (sizeof(areas) / sizeof(areas[0])));
            uint64_t off = areas[a].off + (rnd(&seed) % (areas[a].len / 8)) * 8;
            T_TRUE(off + 8 <= size);
            uint64_t old;
            memcpy(&old, base + off, 8);
            uint64_t v = nasty(&seed, old);
            memcpy(base + off, &v, 8);
        }
        int rc;
        switch (rnd(&seed) % 4) {
        case 0:
            rc = shmchan_service_request(cl, "ping", 4, 0, NULL);
            break;
        case 1:
            rc = shmchan_service_take(srv, buf, sizeof(buf), 0, &rq);
            holding = holding || rc == SHMCHAN_OK;
            break;
        case 2:
            rc = holding ? shmchan_service_reply(srv, &rq, "pong", 4, 0, 0) : SHMCHAN_OK;
            holding = holding && (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT ||
                                  rc == SHMCHAN_ECORRUPT);
            break;
        default:
            rc = shmchan_service_response(cl, buf, sizeof(buf), 2, NULL, NULL);
            break;
        }
        if (!allowed(rc)) {
            t_fail(__FILE__, __LINE__, "iteration %d: %s", it, shmchan_errname(rc));
        }
        oks += rc == SHMCHAN_OK;
    }
    T_TRUE(oks > 0);
    munmap(base, size);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}
