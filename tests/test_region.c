/* Named regions: creation, validation of every bad input, races, truncation. */
#include "core/layout.h"
#include "t.h"

/* Offsets in the region header, from the layout itself. */
#define OFF_VERSION offsetof(shmchan__hdr, layout_version)
#define OFF_MAX_MSG offsetof(shmchan__hdr, max_msg)

static void
write_at(const char *path, long off, const void *p, size_t n)
{
    FILE *f = fopen(path, "r+b");
    T_TRUE(f != NULL);
    T_TRUE(fseek(f, off, SEEK_SET) == 0);
    T_EQ_U64(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint64_t
file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    T_TRUE(f != NULL);
    T_TRUE(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    fclose(f);
    return (uint64_t)n;
}

void t_make_file_channel(const char *path);
int t_open_file(const char *path, shmchan_latest **ch);

/* A file-backed channel holding "hello" as message 1 (shared with test_posix.c). */
void
t_make_file_channel(const char *path)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(path, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "hello", 5, NULL));
    shmchan_latest_close(ch);
}

int
t_open_file(const char *path, shmchan_latest **ch)
{
    shmchan_opts o = t_opts(SHMCHAN_FILE);
    return shmchan_latest_open(path, &o, ch);
}

TEST(name_validation)
{
    const char *bad[] = {"", ".hidden", "a/b", "..", "a..b", "has space", "x\n",
                         "a_name_that_is_far_too_long_for_us", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_ERR(shmchan_name_check(bad[i]), SHMCHAN_ENAME);
        shmchan_opts o = t_opts(SHMCHAN_CREATE);
        shmchan_latest *ch = NULL;
        T_ERR(shmchan_latest_open(bad[i], &o, &ch), SHMCHAN_ENAME);
        T_TRUE(ch == NULL);
    }
    T_ERR(shmchan_name_check(NULL), SHMCHAN_ENAME);
    T_OK(shmchan_name_check("telemetry"));
    T_OK(shmchan_name_check("a.b-c_D9"));
    T_OK(shmchan_name_check("exactly-22-characters_"));
    T_ERR(shmchan_name_check("exactly-23-characters__"), SHMCHAN_ENAME);
}

TEST(region_create_open_excl)
{
    const char *n = t_name();
    shmchan_opts c = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL);
    shmchan_latest *a = NULL, *b = NULL, *d = NULL;
    T_OK(shmchan_latest_open(n, &c, &a));
    T_ERR(shmchan_latest_open(n, &c, &b), SHMCHAN_EEXIST);
    shmchan_opts oc = t_opts(SHMCHAN_CREATE);
    T_OK(shmchan_latest_open(n, &oc, &b)); /* open-or-create finds it */
    T_OK(shmchan_latest_open(n, NULL, &d)); /* plain open */
    T_OK(shmchan_latest_publish(a, "x", 1, NULL));
    T_EQ_U64(shmchan_latest_seq(b), 1);
    T_EQ_U64(shmchan_latest_seq(d), 1);
    shmchan_latest_close(a);
    shmchan_latest_close(b);
    shmchan_latest_close(d);
    shmchan_latest_close(NULL);
    /* POSIX: this removes the name; Windows: it went with its last handle. */
    (void)shmchan_unlink(n, 0);
    T_ERR(shmchan_unlink(n, 0), SHMCHAN_ENOENT);
    T_ERR(shmchan_latest_open(n, NULL, &d), SHMCHAN_ENOENT);
}

TEST(region_missing)
{
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open("no-such-channel-x", NULL, &ch), SHMCHAN_ENOENT);
    T_ERR(t_open_file("/tmp/no/such/dir/chan", &ch), SHMCHAN_ENOENT);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_ERR(shmchan_info_get("no-such-channel-x", 0, &info), SHMCHAN_ENOENT);
    T_ERR(shmchan_latest_open("x", NULL, NULL), SHMCHAN_EINVAL);
}

TEST(region_foreign_file)
{
    const char *p = t_path();
    FILE *f = fopen(p, "wb");
    T_TRUE(f != NULL);
    for (int i = 0; i < 1000; i++) {
        fputs("this is not a channel\n", f);
    }
    fclose(f);
    shmchan_latest *ch = NULL;
    T_ERR(t_open_file(p, &ch), SHMCHAN_EBADMAGIC);
    /* Open-or-create must not overwrite a foreign file either. */
    shmchan_opts o = t_opts(SHMCHAN_FILE | SHMCHAN_CREATE);
    T_ERR(shmchan_latest_open(p, &o, &ch), SHMCHAN_EBADMAGIC);
    T_EQ_U64(file_size(p), 22000); /* untouched */
}

TEST(region_empty_file)
{
    const char *p = t_path();
    FILE *f = fopen(p, "wb");
    T_TRUE(f != NULL);
    fclose(f);
    shmchan_latest *ch = NULL;
    T_ERR(t_open_file(p, &ch), SHMCHAN_EBADMAGIC);
}

TEST(region_truncated_file)
{
    const char *p = t_path();
    t_make_file_channel(p);
    T_TRUE(t_truncate(p, 5000) == 0); /* header intact, data cut off */
    shmchan_latest *ch = NULL;
    T_ERR(t_open_file(p, &ch), SHMCHAN_ETRUNCATED);
    T_TRUE(t_truncate(p, 100) == 0); /* not even a whole header */
    T_ERR(t_open_file(p, &ch), SHMCHAN_ETRUNCATED);
}

TEST(region_wrong_version)
{
    const char *p = t_path();
    t_make_file_channel(p);
    uint32_t v = 999;
    write_at(p, OFF_VERSION, &v, sizeof(v));
    shmchan_latest *ch = NULL;
    T_ERR(t_open_file(p, &ch), SHMCHAN_ELAYOUT);
}

TEST(region_scribbled_header)
{
    const char *p = t_path();
    t_make_file_channel(p);
    uint64_t huge = UINT64_C(1) << 50; /* a lie that would read far out of bounds */
    write_at(p, OFF_MAX_MSG, &huge, sizeof(huge));
    shmchan_latest *ch = NULL;
    T_ERR(t_open_file(p, &ch), SHMCHAN_ECORRUPT);
}

TEST(region_wrong_geometry)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = 100;
    shmchan_latest *a = NULL, *b = NULL;
    T_OK(shmchan_latest_open(n, &o, &a));
    o.max_msg = 200;
    T_ERR(shmchan_latest_open(n, &o, &b), SHMCHAN_EGEOMETRY);
    o.flags = 0;
    T_ERR(shmchan_latest_open(n, &o, &b), SHMCHAN_EGEOMETRY);
    o.max_msg = 100;
    T_OK(shmchan_latest_open(n, &o, &b));
    T_EQ_U64(shmchan_latest_max_msg(b), 100);
    shmchan_latest_close(b);
    o.max_msg = 0; /* zero accepts the creator's */
    T_OK(shmchan_latest_open(n, &o, &b));
    T_EQ_U64(shmchan_latest_max_msg(b), 100);
    shmchan_latest_close(b);
    shmchan_latest_close(a);
}

TEST(region_wrong_kind)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *a = NULL;
    T_OK(shmchan_latest_open(n, &o, &a));
    shmchan_queue *q = NULL;
    T_ERR(shmchan_queue_open(n, NULL, &q), SHMCHAN_EGEOMETRY);
    T_TRUE(q == NULL);
    shmchan_latest_close(a);
}

#define RACERS 6

HELPER(race_open_publish)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = 64;
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(arg, &o, &ch);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "race: open %s: %s\n", arg, shmchan_errname(rc));
        return 1;
    }
    rc = shmchan_latest_publish(ch, "r", 1, NULL);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "race: publish %s: %s\n", arg, shmchan_errname(rc));
        return 2;
    }
    /* Stay until every racer has published: each must see all the publishes
     * in its channel, which holds only if they all got the same one. (Staying
     * also keeps a Windows named channel alive, which ends with its last user.) */
    uint64_t seq = 0;
    while (seq < RACERS) {
        rc = shmchan_latest_wait(ch, seq, 10000, &seq);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "race: wait %s after %llu: %s\n", arg, (unsigned long long)seq,
                    shmchan_errname(rc));
            return 3;
        }
    }
    shmchan_latest_close(ch);
    return seq == RACERS ? 0 : 4;
}

TEST(region_create_race)
{
    enum { ROUNDS = 30 };
    for (int round = 0; round < ROUNDS; round++) {
        const char *n = t_name();
        t_proc pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = t_spawn("race_open_publish", n);
        }
        for (int i = 0; i < RACERS; i++) {
            T_EQ_U64(t_wait_bounded(pids[i], 20000), 0);
        }
        (void)shmchan_unlink(n, 0);
    }
}

TEST(region_no_space)
{
    /* 4 TiB of buffers: more than any test machine can back. Creation fails
     * cleanly instead of a crash on first touch, and leaves no channel. */
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL);
    o.max_msg = UINT64_C(1) << 40;
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open(n, &o, &ch), SHMCHAN_ENOSPC);
    T_TRUE(ch == NULL);
    T_ERR(shmchan_latest_open(n, NULL, &ch), SHMCHAN_ENOENT);
}

TEST(region_file_persists)
{
    const char *p = t_path();
    t_make_file_channel(p);
    shmchan_latest *ch = NULL;
    T_OK(t_open_file(p, &ch));
    char buf[16];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(len, 5);
    T_EQ_U64(seq, 1);
    T_MEMEQ(buf, "hello", 5);
    shmchan_latest_close(ch);
}

/* Info and reaping of a channel; used for files here and for POSIX shared
 * memory in test_posix.c (a Windows named channel ends with its last user,
 * test_win.c checks that instead). */
void t_check_info_and_reap(const char *n, uint32_t flags);

void
t_check_info_and_reap(const char *n, uint32_t flags)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE | flags);
    o.max_msg = 1000;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "abc", 3, NULL));
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(n, flags, &info));
    T_EQ_U64(info.kind, SHMCHAN_KIND_LATEST);
    T_EQ_U64(info.max_msg, 1000);
    T_EQ_U64(info.seq, 1);
    T_EQ_U64(info.messages, 1);
    T_EQ_U64(info.bytes, 3);
    T_EQ_U64(info.in_use, 1);
    T_EQ_U64(info.creator_pid, (uint64_t)t_pid());
    int removed = -1;
    T_ERR(shmchan_reap(n, flags, false, &removed), SHMCHAN_EBUSY);
    T_EQ_U64(removed, 0);
    shmchan_latest_close(ch);
    T_OK(shmchan_info_get(n, flags, &info));
    T_EQ_U64(info.in_use, 0);
    T_OK(shmchan_reap(n, flags, true, &removed)); /* dry run: reports only */
    T_EQ_U64(removed, 1);
    T_OK(shmchan_info_get(n, flags, &info));
    T_OK(shmchan_reap(n, flags, false, &removed));
    T_EQ_U64(removed, 1);
    T_ERR(shmchan_info_get(n, flags, &info), SHMCHAN_ENOENT);
}

TEST(region_info_and_reap)
{
    t_check_info_and_reap(t_path(), SHMCHAN_FILE);
}
