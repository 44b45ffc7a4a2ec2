/* A user's program, built against an installed shmchan: publish and read back. */
#include <stdio.h>
#include <string.h>

#include <shmchan/shmchan.h>

int
main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "install-check";
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(name, &o, &ch);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "open: %s\n", shmchan_strerror(rc));
        return 1;
    }
    char buf[16];
    size_t len = 0;
    uint64_t seq = 0;
    rc = shmchan_latest_publish(ch, "installed", 9, NULL);
    if (rc == SHMCHAN_OK) {
        rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
    }
    shmchan_latest_close(ch);
    shmchan_unlink(name, 0);
    if (rc != SHMCHAN_OK || len != 9 || memcmp(buf, "installed", 9) != 0 || seq != 1) {
        fprintf(stderr, "round trip failed: %s\n", shmchan_strerror(rc));
        return 1;
    }
    printf("ok: shmchan %s, message #%llu\n", shmchan_version(NULL, NULL, NULL),
           (unsigned long long)seq);
    return 0;
}
