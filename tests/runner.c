/*
 * Test runner. Each test runs in its own process (this binary re-executed
 * with --run NAME) with a timeout, so a crash or hang fails that test alone.
 *   shmchan_tests                  run all, print "N passed, N failed, N skipped"
 *   shmchan_tests NAME...          run the named tests
 * A test that calls T_SKIP ends with status T_SKIP_STATUS and counts as
 * skipped, not passed; the exit status is 1 if any failed, T_SKIP_STATUS if
 * all were skipped (so that ctest shows a skip), else 0.
 *   shmchan_tests --list           print the test names
 *   shmchan_tests --run NAME       run one test in this process
 *   shmchan_tests --helper NAME A  run a helper (a peer process of a test)
 */
#include "t.h"

#define X(name) void test_##name(void);
#define H(name) int helper_##name(const char *arg);
#include "test_list.h"
#undef X
#undef H

typedef struct {
    const char *name;
    void (*fn)(void);
} test_entry;

typedef struct {
    const char *name;
    int (*fn)(const char *arg);
} helper_entry;

#define X(name) {#name, test_##name},
#define H(name)
static const test_entry tests[] = {
#include "test_list.h"
};
#undef X
#undef H

#define X(name)
#define H(name) {#name, helper_##name},
static const helper_entry helpers[] = {
#include "test_list.h"
    {NULL, NULL},
};
#undef X
#undef H

#define NTESTS (sizeof(tests) / sizeof(tests[0]))
#define TIMEOUT_MS 150000

static const test_entry *
find_test(const char *name)
{
    for (size_t i = 0; i < NTESTS; i++) {
        if (strcmp(tests[i].name, name) == 0) {
            return &tests[i];
        }
    }
    return NULL;
}

static int
run_helper(const char *name, const char *arg)
{
    for (const helper_entry *h = helpers; h->name != NULL; h++) {
        if (strcmp(h->name, name) == 0) {
            int rc = h->fn(arg);
            fflush(NULL);
            return rc;
        }
    }
    fprintf(stderr, "no such helper: %s\n", name);
    return 125;
}

static int
run_isolated(const test_entry *t)
{
    const char *argv[] = {t_self(), "--run", t->name, NULL};
    t_proc p = t_exec(argv);
    int st = t_wait_timeout(p, TIMEOUT_MS);
    t_kill_group(p); /* helpers it left behind */
    t_cleanup_of(t_proc_id(p)); /* and channels, if it died before cleaning up */
    if (st < 0) {
        (void)t_wait(p);
        printf("FAIL %s (timeout)\n", t->name);
        return 1;
    }
    if (st == 0) {
        printf("PASS %s\n", t->name);
        return 0;
    }
    if (st == T_SKIP_STATUS) {
        printf("SKIP %s\n", t->name);
        return 2;
    }
    printf("FAIL %s (exit status %d)\n", t->name, st);
    return 1;
}

int
main(int argc, char **argv)
{
    t_set_self(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ); /* Windows rejects a size of 0 */
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NTESTS; i++) {
            printf("%s\n", tests[i].name);
        }
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--helper") == 0) {
        return run_helper(argv[2], argc > 3 ? argv[3] : "");
    }
    if (argc > 2 && strcmp(argv[1], "--run") == 0) {
        const test_entry *t = find_test(argv[2]);
        if (t == NULL) {
            return 125;
        }
        t_isolate();
        t_test_name = t->name;
        t->fn();
        fflush(NULL);
        return 0;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 1; i < argc || (argc == 1 && (size_t)i <= NTESTS); i++) {
        const test_entry *t = argc > 1 ? find_test(argv[i]) : &tests[i - 1];
        if (t == NULL) {
            fprintf(stderr, "no such test: %s\n", argv[i]);
            return 2;
        }
        int r = run_isolated(t);
        r == 0 ? passed++ : r == 2 ? skipped++ : failed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed != 0 ? 1 : skipped != 0 && passed == 0 ? T_SKIP_STATUS : 0;
}
