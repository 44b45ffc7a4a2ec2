/*
 * Services: the service kind (SHMCHAN_KIND_SERVICE), requests from clients
 * to competing servers and responses back to the client that asked
 * (docs/services.md). Step one: the public entry points, not yet working.
 */
#include "internal.h"

int
shmchan_service_open(const char *name, const shmchan_opts *opts, shmchan_service **out)
{
    (void)name;
    (void)opts;
    if (out != NULL) {
        *out = NULL;
    }
    return SHMCHAN_ENOTSUP;
}

void
shmchan_service_close(shmchan_service *s)
{
    (void)s;
}

size_t
shmchan_service_max_msg(const shmchan_service *s)
{
    (void)s;
    return 0;
}

int
shmchan_service_request(shmchan_service *s, const void *data, size_t len, int64_t timeout_ms,
                        uint64_t *id_out)
{
    (void)s, (void)data, (void)len, (void)timeout_ms, (void)id_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_response(shmchan_service *s, void *buf, size_t cap, int64_t timeout_ms,
                         size_t *len_out, shmchan_response *info)
{
    (void)s, (void)buf, (void)cap, (void)timeout_ms, (void)len_out, (void)info;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_call(shmchan_service *s, const void *req, size_t req_len, void *buf, size_t cap,
                     int64_t timeout_ms, size_t *len_out)
{
    (void)s, (void)req, (void)req_len, (void)buf, (void)cap, (void)timeout_ms, (void)len_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_take(shmchan_service *s, void *buf, size_t cap, int64_t timeout_ms,
                     shmchan_request *req)
{
    (void)s, (void)buf, (void)cap, (void)timeout_ms, (void)req;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_reply(shmchan_service *s, const shmchan_request *req, const void *data,
                      size_t len, uint32_t flags, int64_t timeout_ms)
{
    (void)s, (void)req, (void)data, (void)len, (void)flags, (void)timeout_ms;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_request_reserve(shmchan_service *s, size_t len, int64_t timeout_ms,
                                void **buf_out)
{
    (void)s, (void)len, (void)timeout_ms, (void)buf_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_request_commit(shmchan_service *s, size_t len, uint64_t *id_out)
{
    (void)s, (void)len, (void)id_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_reply_reserve(shmchan_service *s, const shmchan_request *req, size_t len,
                              int64_t timeout_ms, void **buf_out)
{
    (void)s, (void)req, (void)len, (void)timeout_ms, (void)buf_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_reply_commit(shmchan_service *s, size_t len, uint32_t flags)
{
    (void)s, (void)len, (void)flags;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_notify(shmchan_service *s, shmchan_os_handle *h_out)
{
    (void)s, (void)h_out;
    return SHMCHAN_ENOTSUP;
}

int
shmchan_service_arm(shmchan_service *s)
{
    (void)s;
    return SHMCHAN_ENOTSUP;
}
