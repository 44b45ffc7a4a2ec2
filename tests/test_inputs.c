/*
 * Issue 12: inputs. Unknown option flags and reserved words are rejected,
 * and a geometry mismatch names the field and both values.
 */
#include <string.h>

#include "t.h"

static void
expect_absent(const char *n)
{
    shmchan_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    T_ERR(shmchan_info_get(n, 0, &info), SHMCHAN_ENOENT);
}

TEST(opts_unknown_bits_rejected)
{
    const char *n = t_name();
    shmchan_latest *ch = NULL;
    shmchan_queue *q = NULL;
    shmchan_opts o = t_opts(SHMCHAN_CREATE | 0x8000u);
    T_ERR(shmchan_latest_open(n, &o, &ch), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    o = t_opts(SHMCHAN_CREATE | 0x80000000u);
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    for (int i = 0; i < 5; i++) {
        o = t_opts(SHMCHAN_CREATE);
        o.reserved[i] = 1;
        T_ERR(shmchan_latest_open(n, &o, &ch), SHMCHAN_EINVAL);
        T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    }
    T_TRUE(ch == NULL && q == NULL);
    expect_absent(n);
    o = t_opts(SHMCHAN_CREATE); /* the known flags still work */
    T_OK(shmchan_queue_open(n, &o, &q));
    shmchan_queue_close(q);
}

static void
expect_geometry(const char *field, uint64_t existing, uint64_t requested, const char *text)
{
    const char *f = NULL;
    uint64_t have = 0, want = 0;
    T_OK(shmchan_last_error_geometry(&f, &have, &want));
    T_EQ_STR(f, field);
    T_EQ_U64(have, existing);
    T_EQ_U64(want, requested);
    T_EQ_STR(shmchan_last_error_detail(), text);
}

TEST(geometry_mismatch_names_the_field)
{
    const char *n = t_name(), *m = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = 1024;
    shmchan_latest *ch = NULL, *ch2 = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_ERR(shmchan_last_error_geometry(NULL, NULL, NULL), SHMCHAN_ENOENT);
    T_EQ_STR(shmchan_last_error_detail(), "");
    o.max_msg = 2048;
    T_ERR(shmchan_latest_open(n, &o, &ch2), SHMCHAN_EGEOMETRY);
    expect_geometry("max_msg", 1024, 2048, "max_msg is 1024, not 2048");
    shmchan_queue *q = NULL;
    o = t_opts(0);
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EGEOMETRY);
    expect_geometry("kind", SHMCHAN_KIND_LATEST, SHMCHAN_KIND_QUEUE, "kind is latest, not queue");

    o = t_opts(SHMCHAN_CREATE);
    o.capacity = 1 << 16;
    T_OK(shmchan_queue_open(m, &o, &q));
    shmchan_queue *q2 = NULL;
    o.capacity = 1 << 17;
    T_ERR(shmchan_queue_open(m, &o, &q2), SHMCHAN_EGEOMETRY);
    expect_geometry("capacity", 1 << 16, 1 << 17, "capacity is 65536, not 131072");
    o = t_opts(0);
    o.policy = SHMCHAN_POLICY_OVERWRITE;
    T_ERR(shmchan_queue_open(m, &o, &q2), SHMCHAN_EGEOMETRY);
    expect_geometry("policy", SHMCHAN_POLICY_BLOCK, SHMCHAN_POLICY_OVERWRITE,
                    "policy is block, not overwrite");
    o = t_opts(0);
    o.max_readers = 3;
    T_ERR(shmchan_queue_open(m, &o, &q2), SHMCHAN_EGEOMETRY);
    expect_geometry("max_readers", 64, 3, "max_readers is 64, not 3");
    /* A successful open clears it. */
    o = t_opts(0);
    T_OK(shmchan_queue_open(m, &o, &q2));
    T_ERR(shmchan_last_error_geometry(NULL, NULL, NULL), SHMCHAN_ENOENT);
    shmchan_queue_close(q2);
    shmchan_queue_close(q);
    shmchan_latest_close(ch);
}
