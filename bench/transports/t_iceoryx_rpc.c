/*
 * t_iceoryx_rpc.c - iceoryx 2.0's request/response (client and server ports
 * of its C binding) for the rpc workloads; RouDi must run, as for
 * t_iceoryx.c.  Zero copy both ways: the client loans a request chunk, the
 * harness writes the message into it and the client sends it; the server
 * takes the request, loans a response chunk tied to it, the harness writes
 * the echo there and the server sends it, then releases the request.
 *
 *  iceoryx-rpc-poll  client and server busy-poll for responses / requests.
 *  iceoryx-rpc-wait  both sleep in a waitset until there is something.
 *
 * iceoryx allows one server per service (a second one is refused by RouDi),
 * so runs with several servers are n/a.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <iceoryx_binding_c/client.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/server.h>
#include <iceoryx_binding_c/wait_set.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ROUDI_SOCKET "/tmp/roudi"
#define QUEUE 16

struct irpc_local {
    iox_client_storage_t client_storage;
    iox_server_storage_t server_storage;
    iox_ws_storage_t ws_storage;
    iox_client_t client;
    iox_server_t server;
    iox_ws_t ws;
    const void *request; /* server: the request being answered */
    bool use_waitset;
};

static bool roudi_up(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = ROUDI_SOCKET};
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

static int irpc_create(struct chan *ch)
{
    if (!roudi_up())
        return -EHOSTDOWN;
    if (ch->cfg.readers > 1 || ch->cfg.msg_size > UINT32_MAX)
        return -ENOTSUP;
    return 0;
}

static void sleep_1ms(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

static int open_client(struct chan *ch, struct irpc_local *l, const char *event)
{
    iox_client_options_t o;
    iox_client_options_init(&o);
    o.responseQueueCapacity = QUEUE;
    o.connectOnCreate = true;
    o.responseQueueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    o.serverTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    l->client = iox_client_init(&l->client_storage, "shmbench", ch->cfg.tag, event, &o);
    if (l->use_waitset) {
        l->ws = iox_ws_init(&l->ws_storage);
        if (iox_ws_attach_client_state(l->ws, l->client, ClientState_HAS_RESPONSE, 0, NULL) !=
            WaitSetResult_SUCCESS)
            return -EIO;
    }
    for (int64_t waited = 0; iox_client_get_connection_state(l->client) != ConnectionState_CONNECTED;
         waited += 1000000) {
        if (waited > ch->cfg.op_timeout_ns)
            return -ETIMEDOUT;
        sleep_1ms();
    }
    return 0;
}

static int open_server(struct chan *ch, struct irpc_local *l, const char *event)
{
    iox_server_options_t o;
    iox_server_options_init(&o);
    o.requestQueueCapacity = QUEUE;
    o.offerOnCreate = true;
    o.requestQueueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    o.clientTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    l->server = iox_server_init(&l->server_storage, "shmbench", ch->cfg.tag, event, &o);
    if (l->use_waitset) {
        l->ws = iox_ws_init(&l->ws_storage);
        if (iox_ws_attach_server_state(l->ws, l->server, ServerState_HAS_REQUEST, 0, NULL) !=
            WaitSetResult_SUCCESS)
            return -EIO;
    }
    return 0;
}

static int open_common(struct chan *ch, bool use_waitset)
{
    struct irpc_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    l->use_waitset = use_waitset;
    char name[64], event[32];
    snprintf(name, sizeof name, "shmbench_%d", (int)getpid());
    iox_set_loglevel(Iceoryx_LogLevel_Warn);
    iox_runtime_init(name);
    snprintf(event, sizeof event, "rpc%u", ch->cfg.index);
    return ch->role == ROLE_WRITER ? open_client(ch, l, event) : open_server(ch, l, event);
}

static int irpc_open_poll(struct chan *ch)
{
    return open_common(ch, false);
}

static int irpc_open_wait(struct chan *ch)
{
    return open_common(ch, true);
}

/* Loan a request (client) or a response to the held request (server). */
static void *irpc_reserve(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct irpc_local *l = ch->local;
    void *chunk = NULL;
    struct spin_wait w = {0, 0};
    uint32_t size = (uint32_t)ch->cfg.msg_size;
    enum iox_AllocationResult r;
    for (;;) {
        r = l->client ? iox_client_loan_request(l->client, &chunk, size)
                      : iox_server_loan_response(l->server, l->request, &chunk, size);
        if (r == AllocationResult_SUCCESS)
            return chunk;
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS) {
            *err = -ENOMEM;
            return NULL;
        }
        if (spin_step(&w, timeout_ns)) {
            *err = -ETIMEDOUT;
            return NULL;
        }
    }
}

static int irpc_commit(struct chan *ch, void *msg)
{
    struct irpc_local *l = ch->local;
    if (l->client)
        return iox_client_send(l->client, msg) == ClientSendResult_SUCCESS ? 0 : -EIO;
    int rc = iox_server_send(l->server, msg) == ServerSendResult_SUCCESS ? 0 : -EIO;
    iox_server_release_request(l->server, l->request); /* answered */
    l->request = NULL;
    return rc;
}

/* One attempt: 1 taken, 0 nothing yet, negative on error. */
static int try_take(struct irpc_local *l, const void **chunk)
{
    if (l->client) {
        enum iox_ChunkReceiveResult r = iox_client_take_response(l->client, chunk);
        return r == ChunkReceiveResult_SUCCESS ? 1 : r == ChunkReceiveResult_NO_CHUNK_AVAILABLE ? 0 : -EIO;
    }
    enum iox_ServerRequestResult r = iox_server_take_request(l->server, chunk);
    return r == ServerRequestResult_SUCCESS ? 1 : r == ServerRequestResult_NO_PENDING_REQUESTS ? 0 : -EIO;
}

static const void *irpc_acquire(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct irpc_local *l = ch->local;
    const void *chunk = NULL;
    struct spin_wait w = {0, 0};
    uint64_t deadline = now_ns() + (uint64_t)timeout_ns;
    int got;
    while ((got = try_take(l, &chunk)) == 0) {
        if (!l->ws) {
            if (spin_step(&w, timeout_ns))
                break;
            continue;
        }
        uint64_t t = now_ns();
        if (t > deadline)
            break;
        uint64_t left = deadline - t; /* the wait may end early with nothing */
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        iox_notification_info_t info[1];
        uint64_t missed = 0;
        iox_ws_timed_wait(l->ws, ts, info, 1, &missed);
    }
    *err = got < 0 ? got : got == 0 ? -ETIMEDOUT : 0;
    if (got > 0 && l->server)
        l->request = chunk; /* held until the response is sent */
    return got > 0 ? chunk : NULL;
}

static void irpc_release(struct chan *ch, const void *msg)
{
    struct irpc_local *l = ch->local;
    if (l->client)
        iox_client_release_response(l->client, msg);
    /* a server keeps the request: its response is loaned against it */
}

static void irpc_close(struct chan *ch)
{
    struct irpc_local *l = ch->local;
    if (!l)
        return;
    if (l->ws) {
        if (l->client)
            iox_ws_detach_client_state(l->ws, l->client, ClientState_HAS_RESPONSE);
        else
            iox_ws_detach_server_state(l->ws, l->server, ServerState_HAS_REQUEST);
        iox_ws_deinit(l->ws);
    }
    if (l->client)
        iox_client_deinit(l->client);
    if (l->server)
        iox_server_deinit(l->server);
    free(l);
    ch->local = NULL;
    iox_runtime_shutdown();
}

static const struct transport transport_iceoryx_rpc_poll = {
    .name = "iceoryx-rpc-poll",
    .summary = "iceoryx 2 C binding, zero-copy client/server, both busy-poll",
    .caps = CAP_RPC | CAP_ZERO_COPY,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 20,
    .create = irpc_create,
    .open = irpc_open_poll,
    .reserve = irpc_reserve,
    .commit = irpc_commit,
    .acquire = irpc_acquire,
    .release = irpc_release,
    .close = irpc_close,
};

static const struct transport transport_iceoryx_rpc_wait = {
    .name = "iceoryx-rpc-wait",
    .summary = "iceoryx 2 C binding, zero-copy client/server, both block in a waitset",
    .caps = CAP_RPC | CAP_BLOCKING | CAP_ZERO_COPY,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 20,
    .create = irpc_create,
    .open = irpc_open_wait,
    .reserve = irpc_reserve,
    .commit = irpc_commit,
    .acquire = irpc_acquire,
    .release = irpc_release,
    .close = irpc_close,
};

BENCH_REGISTER_TRANSPORT(transport_iceoryx_rpc_poll)
BENCH_REGISTER_TRANSPORT(transport_iceoryx_rpc_wait)
