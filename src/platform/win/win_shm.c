/*
 * Windows backing objects.
 *
 * A named channel is a pagefile-backed named mapping, "Local\shmchan.<name>"
 * or, with SHMCHAN_GLOBAL, "Global\shmchan.<name>". Its size is fixed when
 * the mapping is created, but the core creates an empty object first and
 * sizes it later, under SHMCHAN__LOCK_INIT (see region.c). So a named channel
 * is two mappings: the platform page "<ns>\shmchan.<name>" (win.h), created
 * at open, which records the reserved size and generation g, and the data
 * mapping "<ns>\shmchan.<name>.d<g>", created at reserve. Numbered locks live
 * in a lock file (win_lock.c).
 *
 * Lifetime: Windows destroys a named mapping with its last handle. A named
 * channel therefore exists while some process has it open and is gone, data
 * included, once the last one closes it: use a file-backed channel
 * (SHMCHAN_FILE) for data that must outlive its users. shmchan_unlink() of a
 * named channel cannot remove the name from processes that use it; it
 * returns SHMCHAN_OK when the channel exists (it goes with its last user,
 * like a file deleted while open) and SHMCHAN_ENOENT when it does not.
 *
 * A file-backed channel maps the file through an unnamed mapping made for
 * each view; its platform page is named after the file's identity (volume
 * serial and file index), so every process that opens the same file, by any
 * path, meets the same wait objects.
 *
 * Truncation: Windows refuses to shrink a file below a mapped view
 * (ERROR_USER_MAPPED_FILE), and a pagefile mapping cannot shrink at all, so
 * the storage under a view never disappears and shmchan__shm_faulted() is
 * always false.
 */
#if defined(SHMCHAN_PLATFORM_WIN)

#include "platform/win/win.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define SIZE_BITS 48
#define SIZE_MASK ((UINT64_C(1) << SIZE_BITS) - 1)
#define GEN_MASK 0xFFFFu

static void
set_prefix(shmchan__shm *s, bool global, const char *tail)
{
    char buf[SHMCHAN__WIN_OBJ_NAME];
    (void)snprintf(buf, sizeof(buf), "%sshmchan.%s", global ? "Global\\" : "Local\\", tail);
    size_t i = 0;
    for (; buf[i] != '\0' && i + 1 < SHMCHAN__WIN_OBJ_NAME; i++) {
        s->prefix[i] = (wchar_t)(unsigned char)buf[i];
    }
    s->prefix[i] = L'\0';
}

static bool
has_global_privilege(void)
{
    HANDLE tok = NULL;
    LUID luid;
    BOOL has = FALSE;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        return false;
    }
    if (LookupPrivilegeValueW(NULL, L"SeCreateGlobalPrivilege", &luid)) {
        PRIVILEGE_SET ps;
        ps.PrivilegeCount = 1;
        ps.Control = PRIVILEGE_SET_ALL_NECESSARY;
        ps.Privilege[0].Luid = luid;
        ps.Privilege[0].Attributes = 0;
        if (!PrivilegeCheck(tok, &ps, &has)) {
            has = FALSE;
        }
    }
    CloseHandle(tok);
    return has != FALSE;
}

/* Creating a mapping in Global\ needs SeCreateGlobalPrivilege (services and
 * administrators have it): say so instead of a bare "access denied". */
static int
create_error(DWORD e, bool global)
{
    if (e == ERROR_ACCESS_DENIED && global && !has_global_privilege()) {
        e = ERROR_PRIVILEGE_NOT_HELD;
    }
    return shmchan__win_err(e);
}

/* Open the platform page, creating it when allowed; *created says if we did. */
static int
meta_open(shmchan__shm *s, bool create, bool excl, bool global, bool *created)
{
    *created = false;
    HANDLE h = NULL;
    if (!excl) {
        /* Open first: an existing Global\ object needs no privilege. */
        h = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, s->prefix);
        if (h == NULL && (!create || GetLastError() != ERROR_FILE_NOT_FOUND)) {
            return shmchan__win_err(GetLastError());
        }
    }
    if (h == NULL) {
        SetLastError(ERROR_SUCCESS); /* ERROR_ALREADY_EXISTS is reported through it */
        h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                               SHMCHAN__WIN_META_SIZE, s->prefix);
        DWORD e = GetLastError();
        if (h == NULL) {
            return create_error(e, global);
        }
        if (e == ERROR_ALREADY_EXISTS && excl) {
            CloseHandle(h);
            return SHMCHAN_EEXIST;
        }
        *created = e != ERROR_ALREADY_EXISTS;
    }
    s->meta_map = h;
    void *p = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
    if (p == NULL) {
        return shmchan__win_err(GetLastError());
    }
    s->meta = p;
    MEMORY_BASIC_INFORMATION mbi;
    if (VirtualQuery(p, &mbi, sizeof(mbi)) == 0 || mbi.RegionSize < sizeof(shmchan__win_meta)) {
        return SHMCHAN_EBADMAGIC; /* somebody else's object under our name */
    }
    return SHMCHAN_OK;
}

static int
open_named(shmchan__shm *s, const char *name, uint32_t flags, bool *created)
{
    bool global = (flags & SHMCHAN_GLOBAL) != 0;
    bool create = (flags & SHMCHAN_CREATE) != 0;
    set_prefix(s, global, name);
    int rc = meta_open(s, create, create && (flags & SHMCHAN_EXCL) != 0, global, created);
    if (rc == SHMCHAN_OK) {
        rc = shmchan__win_lockfile_open(s, name, global);
    }
    return rc;
}

static HANDLE
create_file(const wchar_t *path, uint32_t flags, bool *created)
{
    DWORD access = GENERIC_READ | ((flags & SHMCHAN_RDONLY) ? 0 : GENERIC_WRITE);
    DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    HANDLE h;
    *created = false;
    if (flags & SHMCHAN_CREATE) {
        h = CreateFileW(path, access, share, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            *created = true;
            return h;
        }
        if (GetLastError() != ERROR_FILE_EXISTS || (flags & SHMCHAN_EXCL)) {
            return INVALID_HANDLE_VALUE;
        }
    }
    return CreateFileW(path, access, share, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
}

static int
open_file(shmchan__shm *s, const char *name, uint32_t flags, bool *created)
{
    int rc;
    wchar_t *path = shmchan__win_widen(name, &rc);
    if (path == NULL) {
        return rc;
    }
    s->file = create_file(path, flags, created);
    DWORD e = GetLastError();
    free(path);
    if (s->file == INVALID_HANDLE_VALUE) {
        return shmchan__win_err(e);
    }
    s->lockfile = s->file; /* locks on the file itself, as on POSIX */
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(s->file, &fi)) {
        return shmchan__win_err(GetLastError());
    }
    if (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
        return SHMCHAN_EUNSAFE;
    }
    char id[48];
    (void)snprintf(id, sizeof(id), "f%08lx.%08lx%08lx", (unsigned long)fi.dwVolumeSerialNumber,
                   (unsigned long)fi.nFileIndexHigh, (unsigned long)fi.nFileIndexLow);
    bool global = (flags & SHMCHAN_GLOBAL) != 0;
    set_prefix(s, global, id);
    bool meta_created;
    return meta_open(s, true, false, global, &meta_created);
}

int
shmchan__shm_open(const char *name, uint32_t flags, uint32_t mode, shmchan__shm **out,
                  bool *created_out)
{
    (void)mode; /* Windows objects get the creator's default security */
    *out = NULL;
    *created_out = false;
    shmchan__shm *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SHMCHAN_ENOMEM;
    }
    InitializeCriticalSection(&s->cs);
    s->file = INVALID_HANDLE_VALUE;
    s->lockfile = INVALID_HANDLE_VALUE;
    s->rdonly = (flags & SHMCHAN_RDONLY) != 0;
    s->named = (flags & SHMCHAN_FILE) == 0;
    bool created = false;
    int rc = s->named ? open_named(s, name, flags, &created) : open_file(s, name, flags, &created);
    if (rc != SHMCHAN_OK) {
        bool file = !s->named;
        shmchan__shm_close(s);
        if (created && file) {
            (void)shmchan__shm_unlink(name, flags); /* an empty file of ours */
        }
        return rc;
    }
    *created_out = created;
    *out = s;
    return SHMCHAN_OK;
}

static DWORD
view_access(const shmchan__shm *s)
{
    return s->rdonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE;
}

static void
data_name(const shmchan__shm *s, uint32_t gen, wchar_t *out)
{
    char suffix[16];
    (void)snprintf(suffix, sizeof(suffix), ".d%x", (unsigned)gen);
    shmchan__win_obj_name(s, suffix, out);
}

/* Size reserved for a named channel, holding its data mapping open: 0 while
 * empty, or when the recorded mapping died with a creator nobody else met. */
static int
named_size(shmchan__shm *s, uint64_t *size_out)
{
    uint64_t v = shmchan__load(&s->meta->data, SHMCHAN__ACQUIRE);
    uint64_t size = v & SIZE_MASK;
    uint32_t gen = (uint32_t)(v >> SIZE_BITS);
    *size_out = 0;
    if (size == 0 || (s->data_map != NULL && s->data_gen == gen)) {
        *size_out = size;
        return SHMCHAN_OK;
    }
    wchar_t name[SHMCHAN__WIN_OBJ_NAME];
    data_name(s, gen, name);
    HANDLE h = OpenFileMappingW(view_access(s), FALSE, name);
    if (h == NULL) {
        DWORD e = GetLastError();
        return e == ERROR_FILE_NOT_FOUND ? SHMCHAN_OK : shmchan__win_err(e);
    }
    if (s->data_map != NULL) {
        CloseHandle(s->data_map);
    }
    s->data_map = h;
    s->data_gen = gen;
    *size_out = size;
    return SHMCHAN_OK;
}

int
shmchan__shm_size(shmchan__shm *s, uint64_t *size_out)
{
    if (s->named) {
        return named_size(s, size_out);
    }
    LARGE_INTEGER n;
    if (!GetFileSizeEx(s->file, &n)) {
        return shmchan__win_err(GetLastError());
    }
    *size_out = (uint64_t)n.QuadPart;
    return SHMCHAN_OK;
}

uint32_t
shmchan__shm_mode(shmchan__shm *s)
{
    (void)s;
    return 0; /* access is an ACL on Windows, not permission bits */
}

static void
unmap(shmchan__shm *s)
{
    if (s->base != NULL) {
        UnmapViewOfFile(s->base);
        s->base = NULL;
        s->len = 0;
    }
}

/* A new data mapping of exactly size bytes, committed now: the pagefile's
 * commit charge is taken here, so an exhausted system fails with ENOSPC at
 * creation, never later on first touch. */
static int
reserve_named(shmchan__shm *s, uint64_t size)
{
    uint64_t have = 0;
    int rc = named_size(s, &have);
    if (rc != SHMCHAN_OK || have >= size) {
        return rc;
    }
    /* Windows takes the commit charge in CreateFileMapping; Wine backs the
     * mapping lazily and would only fail later, so check the room first. */
    MEMORYSTATUSEX ms;
    ms.dwLength = sizeof(ms);
    if (size > SIZE_MASK || (GlobalMemoryStatusEx(&ms) && size > ms.ullAvailPageFile)) {
        shmchan__oserror_set(ERROR_COMMITMENT_LIMIT);
        return SHMCHAN_ENOSPC;
    }
    uint32_t gen = (uint32_t)(shmchan__load(&s->meta->data, SHMCHAN__ACQUIRE) >> SIZE_BITS);
    for (int tries = 0; tries <= (int)GEN_MASK; tries++) {
        gen = (gen + 1) & GEN_MASK;
        wchar_t name[SHMCHAN__WIN_OBJ_NAME];
        data_name(s, gen, name);
        SetLastError(ERROR_SUCCESS);
        HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE,
                                      (DWORD)(size >> 32), (DWORD)size, name);
        DWORD e = GetLastError();
        if (h == NULL) {
            rc = create_error(e, s->prefix[0] == L'G');
            return rc == SHMCHAN_ENOMEM ? SHMCHAN_ENOSPC : rc;
        }
        if (e == ERROR_ALREADY_EXISTS) {
            CloseHandle(h); /* a dead creator's generation still held somewhere */
            continue;
        }
        unmap(s);
        if (s->data_map != NULL) {
            CloseHandle(s->data_map);
        }
        s->data_map = h;
        s->data_gen = gen;
        shmchan__store(&s->meta->data, size | (uint64_t)gen << SIZE_BITS, SHMCHAN__RELEASE);
        return SHMCHAN_OK;
    }
    return SHMCHAN_ESYS;
}

/* Grow the file to size with its clusters allocated (never shrink it: other
 * processes may have views, and Windows refuses that anyway). */
static int
reserve_file(shmchan__shm *s, uint64_t size)
{
    LARGE_INTEGER n;
    if (!GetFileSizeEx(s->file, &n)) {
        return shmchan__win_err(GetLastError());
    }
    if ((uint64_t)n.QuadPart >= size) {
        return SHMCHAN_OK;
    }
    unmap(s); /* resizing a file under one's own view is not allowed everywhere */
    FILE_ALLOCATION_INFO alloc;
    alloc.AllocationSize.QuadPart = (LONGLONG)size;
    if (!SetFileInformationByHandle(s->file, FileAllocationInfo, &alloc, sizeof(alloc))) {
        DWORD e = GetLastError();
        if (e == ERROR_DISK_FULL || e == ERROR_HANDLE_DISK_FULL) {
            return shmchan__win_err(e);
        }
        /* other refusals (filesystems without allocation): set the size alone */
    }
    FILE_END_OF_FILE_INFO eof;
    eof.EndOfFile.QuadPart = (LONGLONG)size;
    if (!SetFileInformationByHandle(s->file, FileEndOfFileInfo, &eof, sizeof(eof))) {
        return shmchan__win_err(GetLastError());
    }
    return SHMCHAN_OK;
}

int
shmchan__shm_reserve(shmchan__shm *s, uint64_t size)
{
    if (s->rdonly) {
        return SHMCHAN_EACCES;
    }
    return s->named ? reserve_named(s, size) : reserve_file(s, size);
}

int
shmchan__shm_map(shmchan__shm *s, uint64_t size, void **addr_out)
{
    unmap(s);
    uint64_t have = 0;
    int rc = shmchan__shm_size(s, &have);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (size == 0 || size > have || size > (uint64_t)SIZE_MAX) {
        return SHMCHAN_ETRUNCATED; /* never grow a file by mapping past its end */
    }
    void *p;
    if (s->named) {
        p = MapViewOfFile(s->data_map, view_access(s), 0, 0, (SIZE_T)size);
    } else {
        HANDLE m = CreateFileMappingW(s->file, NULL, s->rdonly ? PAGE_READONLY : PAGE_READWRITE,
                                      (DWORD)(size >> 32), (DWORD)size, NULL);
        if (m == NULL) {
            return shmchan__win_err(GetLastError());
        }
        p = MapViewOfFile(m, view_access(s), 0, 0, (SIZE_T)size);
        DWORD e = GetLastError();
        CloseHandle(m); /* the view keeps the mapping alive */
        SetLastError(e);
    }
    if (p == NULL) {
        return shmchan__win_err(GetLastError());
    }
    s->base = p;
    s->len = size;
    *addr_out = p;
    return SHMCHAN_OK;
}

bool
shmchan__shm_faulted(const shmchan__shm *s)
{
    (void)s;
    return false; /* storage under a view cannot be truncated away (see top) */
}

void
shmchan__shm_close(shmchan__shm *s)
{
    if (s == NULL) {
        return;
    }
    unmap(s);
    if (s->data_map != NULL) {
        CloseHandle(s->data_map);
    }
    if (s->meta != NULL) {
        UnmapViewOfFile(s->meta);
    }
    if (s->meta_map != NULL) {
        CloseHandle(s->meta_map);
    }
    if (s->named) {
        shmchan__win_lockfile_close(s); /* drops every numbered lock */
    } else if (s->file != INVALID_HANDLE_VALUE) {
        CloseHandle(s->file); /* drops every numbered lock */
    }
    free(s->held);
    free(s->lock_path);
    DeleteCriticalSection(&s->cs);
    free(s);
}

int
shmchan__shm_unlink(const char *name, uint32_t flags)
{
    if (flags & SHMCHAN_FILE) {
        int rc;
        wchar_t *path = shmchan__win_widen(name, &rc);
        if (path == NULL) {
            return rc;
        }
        BOOL ok = DeleteFileW(path);
        DWORD e = GetLastError();
        free(path);
        return ok ? SHMCHAN_OK : shmchan__win_err(e);
    }
    /* A named mapping cannot lose its name while in use (see top). */
    shmchan__shm probe;
    memset(&probe, 0, sizeof(probe));
    set_prefix(&probe, (flags & SHMCHAN_GLOBAL) != 0, name);
    HANDLE h = OpenFileMappingW(FILE_MAP_READ, FALSE, probe.prefix);
    if (h == NULL) {
        return shmchan__win_err(GetLastError());
    }
    CloseHandle(h);
    return SHMCHAN_OK;
}

/* A named mapping lives exactly as long as a handle: its name cannot be
 * replaced under an open handle. A file's name is not compared here (see
 * docs/security.md, "The filesystem": the Windows build does not check it). */
int
shmchan__shm_same(shmchan__shm *s, const char *name, uint32_t flags)
{
    (void)s;
    (void)name;
    (void)flags;
    return SHMCHAN_OK;
}

bool
shmchan__shm_foreign(shmchan__shm *s)
{
    (void)s;
    return false; /* access is an ACL, decided when opening */
}

bool
shmchan__shm_same_owner(shmchan__shm *a, shmchan__shm *b)
{
    (void)a;
    (void)b;
    return false; /* no owners to compare: side objects are attached (below) */
}

void
shmchan__shm_follow(shmchan__shm *side, shmchan__shm *chan)
{
    (void)side;
    (void)chan;
}

/*
 * Side wait objects (core/side.h) on Windows: one pagefile-backed named
 * mapping "<channel's platform page name>..wait", e.g.
 * "Local\shmchan.NAME..wait" or, for a file channel,
 * "Local\shmchan.f<volume>.<file index>..wait" (so every path to one file
 * meets one side object). A named mapping lives exactly while a handle is
 * open, so the creator's object would be gone again before anybody opened
 * the channel: every opener of a latest-value channel attaches instead
 * (CreateFileMapping is one atomic create-or-open; a new one is zero-filled)
 * and holds it until it closes the channel. Its lifetime is then the
 * channel's own: nothing to remove, nothing left after a crash.
 *
 * Who may write it: it gets the same security as the channel's mappings,
 * the creator's default DACL (this build sets no other on any object), so
 * exactly the principals that may open the channel may write it, as on
 * POSIX ("whoever may read may arm"). A read-only handle maps the channel
 * with FILE_MAP_READ and writes only here. What a writer takes from it is
 * "slot i is armed"; the event it then sets is named from its own chan_id
 * and the slot (win_notify.c), never from these bytes. docs/event-loops.md,
 * "Read-only readers", has the threat model.
 */
int
shmchan__side_attach(shmchan__shm *chan, uint64_t size, shmchan__shm **out, void **addr_out)
{
    *out = NULL;
    *addr_out = NULL;
    if (chan == NULL || size == 0 || size > UINT32_MAX ||
        wcslen(chan->prefix) + sizeof("..wait") > SHMCHAN__WIN_OBJ_NAME) {
        return SHMCHAN_EINVAL; /* the name would be cut: never another object's */
    }
    wchar_t name[SHMCHAN__WIN_OBJ_NAME];
    shmchan__win_obj_name(chan, "..wait", name);
    SetLastError(ERROR_SUCCESS);
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)size,
                                  name);
    if (h == NULL) { /* another kind of object squats the name, or no privilege */
        return create_error(GetLastError(), chan->prefix[0] == L'G');
    }
    void *p = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
    MEMORY_BASIC_INFORMATION mbi;
    if (p == NULL || VirtualQuery(p, &mbi, sizeof(mbi)) == 0 || mbi.RegionSize < size) {
        DWORD e = p == NULL ? GetLastError() : ERROR_INVALID_DATA; /* a smaller squatter */
        if (p != NULL) {
            UnmapViewOfFile(p);
        }
        CloseHandle(h);
        return shmchan__win_err(e);
    }
    shmchan__shm *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        UnmapViewOfFile(p);
        CloseHandle(h);
        return SHMCHAN_ENOMEM;
    }
    InitializeCriticalSection(&s->cs);
    s->file = INVALID_HANDLE_VALUE;
    s->lockfile = INVALID_HANDLE_VALUE; /* no numbered locks: shm_close skips them */
    s->named = true;
    s->data_map = h;
    s->base = p;
    s->len = size;
    shmchan__win_obj_name(chan, "..wait", s->prefix);
    *out = s;
    *addr_out = p;
    return SHMCHAN_OK;
}

/* Read-only handles arm slots in the attached side object (above). */
bool
shmchan__side_supported(void)
{
    return true;
}

int
shmchan__shm_set_mode(shmchan__shm *s, uint32_t mode)
{
    (void)s;
    (void)mode;
    return SHMCHAN_OK;
}

/* ------------------------------------------------------------ listing */

/* The object namespace cannot be enumerated through documented calls. */
int
shmchan__dir_open(shmchan__dir **out)
{
    *out = NULL;
    return SHMCHAN_ENOTSUP;
}

int
shmchan__dir_next(shmchan__dir *d, const char **name_out)
{
    (void)d;
    (void)name_out;
    return SHMCHAN_EAGAIN;
}

int
shmchan__dir_next_side(shmchan__dir *d, const char **name_out)
{
    (void)d;
    (void)name_out;
    return SHMCHAN_EAGAIN; /* side objects go with their last handle (above) */
}

void
shmchan__dir_close(shmchan__dir *d)
{
    (void)d;
}

#endif /* SHMCHAN_PLATFORM_WIN */
