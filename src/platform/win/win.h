/* Private declarations of the Windows platform files. */
#ifndef SHMCHAN_WIN_H
#define SHMCHAN_WIN_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602 /* Windows 8: GetSystemTimePreciseAsFileTime */
#endif
#include <windows.h>

#include "platform/platform.h"

/* Thread-local storage: C11 where the compiler has it, MSVC's spelling otherwise. */
#if defined(_MSC_VER) && !defined(__clang__)
#define SHMCHAN__WIN_TLS __declspec(thread)
#else
#define SHMCHAN__WIN_TLS _Thread_local
#endif

/* Longest name of a kernel object we derive: "Global\shmchan.<name>" plus a suffix. */
#define SHMCHAN__WIN_OBJ_NAME 96

/*
 * The platform page: one per channel, a pagefile-backed named mapping of
 * SHMCHAN__WIN_META_SIZE bytes, "<ns>\shmchan.<name>" for a named channel
 * and "<ns>\shmchan.f<volume>.<file index>" for a file channel (<ns> is Local
 * or Global). Every handle maps it read-write for its whole life, so it
 * exists exactly while some process has the channel open; the first opener
 * creates it zeroed. It is private to this platform and not part of the
 * channel's layout (core/layout.h), which stays identical to POSIX.
 *
 * `data` (named channels only) says which data mapping holds the region:
 * generation g in the top 16 bits names "<ns>\shmchan.<name>.d<g>", the low
 * 48 bits are the size its creator reserved (a pagefile mapping's size is
 * fixed when it is created, so the region cannot be sized later as a file or
 * POSIX shm object is). 0 means empty: nothing reserved yet. Only the holder
 * of SHMCHAN__LOCK_INIT writes it, after creating the data mapping, with
 * release order; readers load it with acquire order and then open the named
 * mapping. A value whose mapping no longer exists (its creator died before
 * anybody else opened it) reads as empty, and the next initialiser moves to a
 * new generation.
 *
 * `slots` is a hash table, keyed by the offset of a wait word in the
 * channel's mapping, of the cross-process wait/wake state (win_wait.c has the
 * protocol). Slots are claimed with a CAS on `key` and never released, so a
 * lookup may stop at the first free slot of its probe sequence.
 */
typedef struct shmchan__win_wait_slot {
    shmchan__atomic_u64 key;   /* offset of the word + 1; 0 = free */
    shmchan__atomic_u64 state; /* generation << 32 | sleepers registered in it */
} shmchan__win_wait_slot;

#define SHMCHAN__WIN_META_SIZE 65536u
#define SHMCHAN__WIN_WAIT_SLOTS ((SHMCHAN__WIN_META_SIZE - 64u) / sizeof(shmchan__win_wait_slot))

typedef struct shmchan__win_meta {
    shmchan__atomic_u64 data; /* named channels: generation << 48 | reserved size */
    uint8_t pad[56];
    shmchan__win_wait_slot slots[SHMCHAN__WIN_WAIT_SLOTS];
} shmchan__win_meta;

_Static_assert(sizeof(shmchan__win_meta) <= SHMCHAN__WIN_META_SIZE, "platform page fits");

struct shmchan__shm {
    bool rdonly;
    bool named;           /* pagefile-backed named channel; else file-backed */
    HANDLE file;          /* file channels: the backing file */
    HANDLE lockfile;      /* where the numbered locks live: the backing or lock file */
    wchar_t *lock_path;   /* named channels: path of the lock file, to remove it last */
    HANDLE meta_map;
    shmchan__win_meta *meta;
    HANDLE data_map;      /* named channels: the data mapping of generation data_gen */
    uint32_t data_gen;
    void *base;           /* the one view of the region, or NULL */
    uint64_t len;
    wchar_t prefix[SHMCHAN__WIN_OBJ_NAME]; /* name of the platform page; others append */
    CRITICAL_SECTION cs;  /* guards held[] between threads */
    uint8_t *held;        /* per lock index: 0 free, 1 shared, 2 exclusive */
    uint32_t nheld;
};

/* Map a GetLastError() value to a shmchan code, recording it for shmchan_last_oserror(). */
int shmchan__win_err(DWORD e);

/* UTF-8 to a new UTF-16 string (free()); NULL on failure (ENOMEM or ENAME in *rc). */
wchar_t *shmchan__win_widen(const char *s, int *rc);

/* Name of a kernel object derived from the channel: its prefix + an ASCII suffix. */
void shmchan__win_obj_name(const shmchan__shm *s, const char *suffix, wchar_t *out);

/* Lock files for named channels (win_lock.c). */
int shmchan__win_lockfile_open(shmchan__shm *s, const char *name, bool global);
void shmchan__win_lockfile_close(shmchan__shm *s);

/* Offset of p in the mapping of s (wait words are keyed by it). */
static inline uint64_t
shmchan__win_offset(const shmchan__shm *s, const void *p)
{
    return (uint64_t)((const uint8_t *)p - (const uint8_t *)s->base);
}

#endif /* SHMCHAN_WIN_H */
