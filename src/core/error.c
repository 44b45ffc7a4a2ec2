/* Error codes: names and messages from the one table in the public header. */
#include "internal.h"

const char *
shmchan_strerror(int err)
{
    switch (err) {
    case SHMCHAN_OK:
        return "success";
#define X(name, code, msg) \
    case (code):           \
        return (msg);
        SHMCHAN_ERRNO_MAP(X)
#undef X
    default:
        return "unknown shmchan error";
    }
}

const char *
shmchan_errname(int err)
{
    switch (err) {
    case SHMCHAN_OK:
        return "SHMCHAN_OK";
#define X(name, code, msg) \
    case (code):           \
        return "SHMCHAN_" #name;
        SHMCHAN_ERRNO_MAP(X)
#undef X
    default:
        return "SHMCHAN_EUNKNOWN";
    }
}

int
shmchan_last_oserror(void)
{
    return shmchan__oserror_get();
}

const char *
shmchan_version(int *major, int *minor, int *patch)
{
    if (major != NULL) {
        *major = SHMCHAN_VERSION_MAJOR;
    }
    if (minor != NULL) {
        *minor = SHMCHAN_VERSION_MINOR;
    }
    if (patch != NULL) {
        *patch = SHMCHAN_VERSION_PATCH;
    }
    return SHMCHAN_VERSION_STRING;
}

uint32_t
shmchan_layout_version(void)
{
    return SHMCHAN__LAYOUT_VERSION;
}
