/* Error codes: names and messages from the one table in the public header. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* This thread's last open's detail (shmchan_last_error_detail()). */
static _Thread_local struct {
    const char *field; /* NULL: none */
    uint64_t existing;
    uint64_t requested;
    char text[96];
} detail;

void
shmchan__detail_clear(void)
{
    detail.field = NULL;
    detail.text[0] = '\0';
}

/* Kinds and policies by name in the text; other fields as numbers. */
static const char *
value_name(const char *field, uint64_t v, char *buf, size_t cap)
{
    if (strcmp(field, "kind") == 0) {
        return v == SHMCHAN_KIND_QUEUE ? "queue" : v == SHMCHAN_KIND_LATEST ? "latest" : "?";
    }
    if (strcmp(field, "policy") == 0) {
        return v == SHMCHAN_POLICY_BLOCK       ? "block"
               : v == SHMCHAN_POLICY_OVERWRITE ? "overwrite"
               : v == 0                        ? "none"
                                               : "?";
    }
    snprintf(buf, cap, "%llu", (unsigned long long)v);
    return buf;
}

int
shmchan__geometry_error(const char *field, uint64_t existing, uint64_t requested)
{
    char a[24], b[24];
    detail.field = field;
    detail.existing = existing;
    detail.requested = requested;
    snprintf(detail.text, sizeof(detail.text), "%s is %s, not %s", field,
             value_name(field, existing, a, sizeof(a)), value_name(field, requested, b, sizeof(b)));
    return SHMCHAN_EGEOMETRY;
}

const char *
shmchan_last_error_detail(void)
{
    return detail.text;
}

int
shmchan_last_error_geometry(const char **field_out, uint64_t *existing_out,
                            uint64_t *requested_out)
{
    if (detail.field == NULL) {
        return SHMCHAN_ENOENT;
    }
    if (field_out != NULL) {
        *field_out = detail.field;
    }
    if (existing_out != NULL) {
        *existing_out = detail.existing;
    }
    if (requested_out != NULL) {
        *requested_out = detail.requested;
    }
    return SHMCHAN_OK;
}

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
