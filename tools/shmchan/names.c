/*
 * Lists of channel names: from POSIX shared memory (sorted, for stable
 * output) or from the command line (in the order given).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int
names_add(name_list *nm, size_t *cap, const char *name)
{
    if (nm->n == *cap) {
        size_t c = *cap != 0 ? *cap * 2 : 32;
        char **v = realloc(nm->v, c * sizeof(*v));
        if (v == NULL) {
            return SHMCHAN_ENOMEM;
        }
        nm->v = v;
        *cap = c;
    }
    size_t len = strlen(name) + 1;
    char *copy = malloc(len);
    if (copy == NULL) {
        return SHMCHAN_ENOMEM;
    }
    memcpy(copy, name, len);
    nm->v[nm->n++] = copy;
    return SHMCHAN_OK;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
names_listed(name_list *nm, int (*open)(shmchan_list **))
{
    shmchan_list *it;
    size_t cap = 0;
    const char *name;
    nm->v = NULL;
    nm->n = 0;
    int rc = open(&it);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    while ((rc = shmchan_list_next(it, &name)) == SHMCHAN_OK) {
        rc = names_add(nm, &cap, name);
        if (rc != SHMCHAN_OK) {
            break;
        }
    }
    shmchan_list_close(it);
    if (rc != SHMCHAN_EAGAIN) {
        names_free(nm);
        return rc;
    }
    if (nm->n > 1) {
        qsort(nm->v, nm->n, sizeof(*nm->v), by_name);
    }
    return SHMCHAN_OK;
}

int
names_from_shm(name_list *nm)
{
    return names_listed(nm, shmchan_list_open);
}

int
names_from_sides(name_list *nm)
{
    return names_listed(nm, shmchan_list_sides_open);
}

int
names_from_args(name_list *nm, const char *const *args, int n)
{
    size_t cap = 0;
    nm->v = NULL;
    nm->n = 0;
    for (int i = 0; i < n; i++) {
        int rc = names_add(nm, &cap, args[i]);
        if (rc != SHMCHAN_OK) {
            names_free(nm);
            return rc;
        }
    }
    return SHMCHAN_OK;
}

void
names_free(name_list *nm)
{
    for (size_t i = 0; i < nm->n; i++) {
        free(nm->v[i]);
    }
    free(nm->v);
    nm->v = NULL;
    nm->n = 0;
}
