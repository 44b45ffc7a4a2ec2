/*
 * The table of channel kinds: every kind this library knows, with its name
 * and its operations (kind_ops: plan, match, init, reset, info, peers).
 * region.c (open, inspection), inspect.c (info, peers) and the CLI (names)
 * look kinds up here only; a new kind is one entry below.
 *
 * A kind number this table lacks is a kind made by a newer library (or a
 * forged header): callers say SHMCHAN_EUNKNOWNKIND, never SHMCHAN_ECORRUPT,
 * and go on serving the kinds they know (docs/design.md, "Kinds and the
 * layout version").
 */
#include "internal.h"

static const shmchan__kind_ops *const kinds[] = {
    &shmchan__latest_ops,
    &shmchan__queue_ops,
    &shmchan__service_ops,
};

const shmchan__kind_ops *
shmchan__kind_find(uint32_t kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i]->kind == kind) {
            return kinds[i];
        }
    }
    return NULL;
}

const char *
shmchan_kind_name(uint32_t kind)
{
    const shmchan__kind_ops *ops = shmchan__kind_find(kind);
    return ops != NULL ? ops->name : NULL;
}
