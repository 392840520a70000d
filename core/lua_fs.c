/*
 * lua_fs.c: the file-system functions of "mpic.core.util", so that no Lua
 * code shells out to ls, find, test or mkdir.
 *
 * util.listdir(path [, max]) -> {name, ...} | nil, err
 *   The entries of a folder except "." and "..", sorted bytewise. More than
 *   max entries (default MPIC_LISTDIR_MAX) is an error, not a truncation.
 * util.filetype(path) -> "file" | "directory" | "other" | nil, err
 *   What path is after following symbolic links.
 * util.mkdir(path [, mode]) -> true | nil, err
 *   Creates path and its missing parents (mode default 0755); an existing
 *   folder is fine.
 */
#include "lua_fs.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MPIC_LISTDIR_MAX 100000

static int fail(lua_State *L, const char *what, const char *path, int err)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
    return 2;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, MPIC_LISTDIR_MAX);
    luaL_argcheck(L, max >= 0 && max <= MPIC_LISTDIR_MAX, 2, "max out of range");
    DIR *d = opendir(path);
    if (!d)
        return fail(L, "cannot list", path, errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int err = 0, too_many = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            err = errno;
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((lua_Integer)n >= max) {
            too_many = 1;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **p = realloc(names, ncap * sizeof *p);
            if (!p) {
                err = ENOMEM;
                break;
            }
            names = p, cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name))) {
            err = ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!err && !too_many) {
        qsort(names, n, sizeof *names, cmp_names);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushstring(L, names[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (too_many) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot list %s: more than %I entries", path, max);
        return 2;
    }
    if (err)
        return fail(L, "cannot list", path, err);
    return 1;
}

static int l_filetype(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(L, "cannot stat", path, errno);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    return 1;
}

static int l_mkdir(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    lua_Integer mode = luaL_optinteger(L, 2, 0755);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode out of range");
    if (len == 0 || len >= PATH_MAX || memchr(path, '\0', len))
        return luaL_argerror(L, 1, "empty, too long or holding a NUL byte");
    char buf[PATH_MAX];
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return fail(L, "cannot create", buf, errno);
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(L, "cannot create", path, errno);
    if (!S_ISDIR(st.st_mode))
        return fail(L, "cannot create", path, ENOTDIR);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg fs_funcs[] = {
    {"listdir", l_listdir},
    {"filetype", l_filetype},
    {"mkdir", l_mkdir},
    {NULL, NULL},
};

void mpic_fs_register(lua_State *L) { luaL_setfuncs(L, fs_funcs, 0); }
