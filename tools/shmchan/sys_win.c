/*
 * Windows services of the CLI: binary stdio, Ctrl-C and the monotonic clock.
 * See sys.h. A console control handler runs on its own thread, so it only
 * records the event; waits are sliced (cli_wait) and notice it there.
 */
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "sys.h"

static volatile LONG caught;

void
sys_init(void)
{
    (void)_setmode(_fileno(stdin), _O_BINARY);
    (void)_setmode(_fileno(stdout), _O_BINARY);
}

static BOOL WINAPI
on_ctrl(DWORD type)
{
    if (InterlockedCompareExchange(&caught, 0, 0) != 0) {
        return FALSE; /* a second one: the default handler ends the process */
    }
    LONG sig = type == CTRL_C_EVENT ? SIGINT : type == CTRL_BREAK_EVENT ? SIGBREAK : SIGTERM;
    InterlockedExchange(&caught, sig);
    return TRUE;
}

void
sys_catch_interrupts(void)
{
    (void)SetConsoleCtrlHandler(on_ctrl, TRUE);
}

int
sys_interrupted(void)
{
    return (int)InterlockedCompareExchange(&caught, 0, 0);
}

uint64_t
sys_now_ms(void)
{
    return (uint64_t)GetTickCount64();
}

size_t
sys_env_checks(sys_check *out, size_t cap)
{
    if (cap == 0) {
        return 0;
    }
    memset(out, 0, sizeof(*out));
    out->name = "platform";
    out->status = SYS_INFO;
    snprintf(out->detail, sizeof(out->detail),
             "Windows: named mappings live in the session's Local\\ namespace (Global\\ with "
             "--global, which needs SeCreateGlobalPrivilege to create); /dev/shm, RemoveIPC "
             "and OFD-lock checks do not apply");
    return 1;
}
