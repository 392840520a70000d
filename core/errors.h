/*
 * errors.h: the closed vocabulary of probe failure kinds, defined once.
 *
 * Every probe failure crosses into Lua as `nil, kind, detail` where kind is
 * one of the names below; the JSON API and the audit log use the same names.
 * X(enum suffix, name, completed) -- completed is 1 when the failure is a
 * definite answer (evidence obtained, e.g. NXDOMAIN) rather than a lack of one.
 */
#ifndef MPIC_ERRORS_H
#define MPIC_ERRORS_H

#define MPIC_ERRORS(X)                         \
    X(TIMEOUT, "timeout", 0)                   \
    X(NXDOMAIN, "nxdomain", 1)                 \
    X(NODATA, "nodata", 1)                     \
    X(SERVFAIL, "servfail", 0)                 \
    X(REFUSED, "refused", 0)                   \
    X(DNSSEC_BOGUS, "dnssec_bogus", 0)         \
    X(DNS, "dns", 0)                           \
    X(CONNECT, "connect", 0)                   \
    X(TLS, "tls", 0)                           \
    X(HTTP_STATUS, "http_status", 1)           \
    X(TOO_LARGE, "too_large", 1)               \
    X(REDIRECT, "redirect", 1)                 \
    X(RESERVED_ADDRESS, "reserved_address", 1) \
    X(INVALID_TARGET, "invalid_target", 1)     \
    X(PROTOCOL, "protocol", 0)                 \
    X(CANCELLED, "cancelled", 0)               \
    X(INTERNAL, "internal", 0)

enum mpic_err {
    MPIC_OK = 0,
#define X(e, n, c) MPIC_E_##e,
    MPIC_ERRORS(X)
#undef X
        MPIC_E__COUNT
};

/* The name of an error kind ("timeout", ...); "internal" for out-of-range. */
const char *mpic_err_name(enum mpic_err e);
/* 1 when the kind is a definite negative answer. */
int mpic_err_completed(enum mpic_err e);

/* The Lua module "mpic.core.errors" (errors.c): {names = {"timeout", ...}
 * in the order above, completed = {timeout = false, nxdomain = true, ...}},
 * read by lua/mpic/error_types.lua. Declared without lua.h so that the pure
 * C modules including this header stay free of Lua. */
struct lua_State;
int luaopen_mpic_errors(struct lua_State *L);

#endif
