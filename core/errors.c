/*
 * errors.c: names and classes of the probe failure kinds listed in errors.h.
 */
#include "errors.h"

static const struct {
    const char *name;
    int completed;
} kinds[] = {{"ok", 1},
#define X(e, n, c) {n, c},
             MPIC_ERRORS(X)
#undef X
};

const char *mpic_err_name(enum mpic_err e)
{
    if ((int)e <= 0 || e >= MPIC_E__COUNT)
        return "internal";
    return kinds[e].name;
}

int mpic_err_completed(enum mpic_err e)
{
    if ((int)e <= 0 || e >= MPIC_E__COUNT)
        return 0;
    return kinds[e].completed;
}
