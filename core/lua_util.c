/*
 * lua_util.c: the Lua module "mpic.core.util", assembled from one file per
 * concern (lua_util.h): JSON (lua_json.c), text (lua_text.c), hashes and
 * randomness (lua_crypto.c), files (lua_fs.c). This file keeps the clock,
 * great-circle distance, line appends and the terminal test.
 * util.audit is the audit log writer of audit.c ("mpic.core.audit").
 */
#include "audit.h"
#include "encode.h"
#include "lua_fs.h"
#include "lua_util.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int l_distance_km(lua_State *L)
{
    lua_pushnumber(L, mpic_distance_km(luaL_checknumber(L, 1), luaL_checknumber(L, 2),
                                       luaL_checknumber(L, 3), luaL_checknumber(L, 4)));
    return 1;
}

static int l_time_ns(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 1;
}

/* util.append_line(path, line [, sync]) -> true | nil, err
 * Appends line plus a newline with one O_APPEND write (so concurrent
 * writers never interleave inside a line), then fsyncs when sync is true.
 * Used for the audit log: the record is durable before the verdict leaves. */
static int l_append_line(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *line = luaL_checklstring(L, 2, &n);
    int sync = lua_isnone(L, 3) ? 1 : lua_toboolean(L, 3);
    if (memchr(line, '\n', n))
        return luaL_argerror(L, 2, "line must not contain a newline");
    char *buf = malloc(n + 1);
    if (!buf)
        return luaL_error(L, "out of memory");
    memcpy(buf, line, n);
    buf[n] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    const char *what = "open";
    size_t off = 0;
    if (fd >= 0) {
        what = "write";
        while (off < n + 1) {
            ssize_t w = write(fd, buf + off, n + 1 - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off == n + 1 && sync && fsync(fd) != 0)
            off = 0, what = "fsync";
    }
    int err = errno;
    free(buf);
    if (fd >= 0)
        close(fd);
    if (fd < 0 || off != n + 1) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
    return 1;
}

static const luaL_Reg funcs[] = {
    {"distance_km", l_distance_km}, {"time_ns", l_time_ns}, {"isatty", l_isatty},
    {"append_line", l_append_line}, {NULL, NULL},
};

int luaopen_mpic_util(lua_State *L)
{
    luaL_newlib(L, funcs);
    mpic_util_register_json(L);
    mpic_util_register_text(L);
    mpic_util_register_crypto(L);
    mpic_fs_register(L);   /* listdir, filetype, mkdir (lua_fs.c) */
    luaopen_mpic_audit(L); /* the group-commit audit writer (audit.c) */
    lua_setfield(L, -2, "audit");
    return 1;
}
