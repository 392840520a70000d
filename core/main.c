/*
 * main.c: the mpic command line. Sets up the Lua state (standard libraries,
 * the C modules under "mpic.core.*", package.path on the Lua library),
 * then either runs the interactive REPL (each line a task) or hands the
 * arguments to the Lua command dispatcher lua/mpic/cmd/cli.lua, run as the root
 * task. Exit status: what the command returns; 1 on an uncaught error (with
 * a traceback); 2 on usage errors.
 * Uses: task.c (scheduler), repl.c (the REPL).
 */
#include "errors.h"
#include "lua_sandbox.h"
#include "repl.h"
#include "sign.h"
#include "rt.h"
#include "task.h"
#include "util.h"

#include <lauxlib.h>
#include <dlfcn.h>
#include <limits.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Probe bindings live in their own files; they are optional at link time so
 * that the core builds and tests on its own. */
int luaopen_mpic_dns(lua_State *L) __attribute__((weak));
int luaopen_mpic_http(lua_State *L) __attribute__((weak));
int luaopen_mpic_tls(lua_State *L) __attribute__((weak));
int luaopen_mpic_server(lua_State *L) __attribute__((weak));
int luaopen_mpic_workers(lua_State *L) __attribute__((weak));

static const char usage[] =
    "usage: mpic [--lua-path DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  validate --config FILE (--request FILE|- | --check dcv|caa --method M --target T\n"
    "           [--param k=v ...]) [--json]   one validation; exit 0 valid, 1 not valid\n"
    "  serve --config FILE --listen ADDR:PORT [--tls-cert F --tls-key F] [--client-ca F]\n"
    "        [--token T]                   the coordinator: Open MPIC API (POST /mpic)\n"
    "  agent --config FILE --listen ADDR:PORT --perspective ID --tls-cert F --tls-key F\n"
    "        --client-ca F                 a remote perspective (mutual TLS)\n"
    "  run [--config FILE] FILE.lua [ARGS] run a Lua script as a task\n"
    "  check-config [--config FILE]        load config, policies and challenge types\n"
    "  test [--config FILE] FILE|DIR ...   run Lua test files (*_test.lua)\n"
    "  repl [--config FILE]                interactive Lua with mpic loaded\n"
    "  explain [FILE|-] [--trace ID]       which rule decided an audit line\n"
    "  simulate [--config FILE] --policy P [--policy Q ...] [--model M] [--trials N]\n"
    "           [--seed S] [--json]        measure policies against attack and outage models\n"
    "  audit verify FILE... [--config F] [--key PEM ...] [--open]\n"
    "                                      check an audit log's chain, checkpoints, signatures\n"
    "  audit replay FILE... [--config F] [--trace ID] [--policy-store DIR]\n"
    "                                      judge every line again from its signed evidence\n"
    "  demo                                a validation against a local lab\n"
    "  help [COMMAND]                      this text, or one command's usage\n"
    "\n"
    "Every command takes --help; those that load a configuration take --config FILE.\n"
    "\n"
    "options:\n"
    "  --lua-path DIR   use DIR as the mpic root (holding lua/ and policies/)\n"
    "  --help, -h       this text\n"
    "  --version        print the version\n";

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* The allocator whose malloc this process calls: "jemalloc" when the build
 * links it (MPIC_JEMALLOC), "libc", or the path of whatever else provides it
 * (a sanitizer's interceptor lives in the executable). */
static const char *malloc_provider(void)
{
    Dl_info info;
    void *(*m)(size_t) = malloc;
    if (!dladdr((void *)m, &info) || !info.dli_fname)
        return "unknown";
    if (strstr(info.dli_fname, "libjemalloc"))
        return "jemalloc";
    if (strstr(info.dli_fname, "libc.so"))
        return "libc";
    return info.dli_fname;
}

/* The mpic root: --lua-path, else the source tree when running from a build
 * tree, else the installed data directory. */
static void find_root(char *out, size_t n, const char *override)
{
    char exe[PATH_MAX], probe[PATH_MAX + 32];
    if (override) {
        snprintf(out, n, "%s", override);
        return;
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(probe, sizeof probe, "%s/CMakeCache.txt", exe);
        if (file_exists(probe) && file_exists(MPIC_SOURCE_DIR "/lua/mpic/init.lua")) {
            snprintf(out, n, "%s", MPIC_SOURCE_DIR);
            return;
        }
    }
    snprintf(out, n, "%s", MPIC_DATA_DIR);
}

static void preload(lua_State *L, const char *name, lua_CFunction f)
{
    if (!f)
        return;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int setup_state(lua_State *L, const char *root)
{
    luaL_openlibs(L);
    if (mpic_rt_init(L))
        return -1;
    preload(L, "mpic.core.util", luaopen_mpic_util);
    preload(L, "mpic.core.errors", luaopen_mpic_errors);
    preload(L, "mpic.core.yaml", luaopen_mpic_yaml);
    preload(L, "mpic.core.sandbox", luaopen_mpic_sandbox);
    preload(L, "mpic.core.sign", luaopen_mpic_sign);
    preload(L, "mpic.core.dns", luaopen_mpic_dns);
    preload(L, "mpic.core.http", luaopen_mpic_http);
    preload(L, "mpic.core.tls", luaopen_mpic_tls);
    preload(L, "mpic.core.server", luaopen_mpic_server);
    preload(L, "mpic.core.workers", luaopen_mpic_workers);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath"); /* no native modules from the file system */
    lua_pop(L, 1);
    /* package.loaded["mpic.paths"] */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
    lua_pushstring(L, MPIC_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, malloc_provider());
    lua_setfield(L, -2, "malloc");
#ifdef MPIC_WITH_JEMALLOC
    lua_pushstring(L, "jemalloc");
#else
    lua_pushstring(L, "libc");
#endif
    lua_setfield(L, -2, "malloc_built");
    lua_setfield(L, -2, "mpic.paths");
    lua_pop(L, 1);
    return 0;
}

/* Report a failed root task; returns the exit status. */
static int report_outcome(lua_State *L, int idx)
{
    lua_getfield(L, idx, "ok");
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok) {
        lua_rawgeti(L, idx, 1);
        int status = 0;
        if (lua_isinteger(L, -1))
            status = (int)lua_tointeger(L, -1);
        else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
            status = 1;
        lua_pop(L, 1);
        return status;
    }
    lua_getfield(L, idx, "traceback");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, idx, "err");
    }
    fprintf(stderr, "mpic: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "failed");
    lua_pop(L, 1);
    return 1;
}

/* Protected: require "mpic.cmd.cli" and run cli.main(args) as the root task. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    lua_settop(L, 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "mpic.cmd.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    mpic_rt_run_main(L, 1);
    lua_pushinteger(L, report_outcome(L, lua_gettop(L)));
    return 1;
}

int main(int argc, char **argv)
{
    const char *lua_path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("mpic %s (malloc: %s)\n", MPIC_VERSION, malloc_provider());
            return 0;
        } else if (strcmp(argv[i], "--lua-path") == 0 && i + 1 < argc) {
            lua_path = argv[++i];
        } else {
            break;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[i], "help") == 0 && i + 1 >= argc) { /* mpic help [COMMAND] */
        fputs(usage, stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    char root[PATH_MAX];
    find_root(root, sizeof root, lua_path);
    lua_State *L = luaL_newstate();
    if (L) /* same realloc/free as the default; budgets for bounded calls */
        lua_setallocf(L, mpic_lua_alloc, NULL);
    if (!L || setup_state(L, root)) {
        fprintf(stderr, "mpic: cannot initialise the runtime\n");
        return 1;
    }
    int status;
    int repl_help = 0; /* `mpic repl --help` prints its usage from Lua, no line loop */
    for (int j = i + 1; j < argc; j++)
        if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
            repl_help = 1;
    if (strcmp(argv[i], "repl") == 0 && !repl_help) {
        status = mpic_repl_run(L, argc - i - 1, argv + i + 1);
    } else {
        lua_pushcfunction(L, pmain);
        lua_pushinteger(L, argc - i);
        lua_pushlightuserdata(L, argv + i);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
            fprintf(stderr, "mpic: %s\n", lua_tostring(L, -1));
            status = 1;
        } else {
            status = (int)lua_tointeger(L, -1);
        }
    }
    lua_close(L);
    mpic_rt_shutdown(L);
    fflush(stdout);
    return status;
}
