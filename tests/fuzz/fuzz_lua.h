/*
 * fuzz_lua.h: the Lua side shared by the fuzz targets that drive Lua code.
 * Builds one Lua state per process the way the mpic binary does (standard
 * libraries, the runtime, the C modules preloaded under "mpic.core.*",
 * package.path on the source tree's lua/ directory), runs a setup chunk
 * that returns the function to call for each input, and calls it under a
 * protected call. A Lua error escaping that function is a finding: it is
 * printed and the process aborts so that libFuzzer records the input.
 * Uses: Lua 5.4, task.c (mpic_rt_init), errors.h, util.h, lua_http.h, lua_dns.h, lua_tls.h,
 * lua_sandbox.h (the allocator with per-call budgets), sign.h.
 */
#ifndef MPIC_FUZZ_LUA_H
#define MPIC_FUZZ_LUA_H

#include "errors.h"
#include "lua_dns.h"
#include "lua_http.h"
#include "lua_sandbox.h"
#include "lua_tls.h"
#include "sign.h"
#include "task.h"
#include "util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_LUA_COUNTERS (1u << 16)
__attribute__((
    used, section("__libfuzzer_extra_counters"))) static uint8_t fuzz_lua_cov[FUZZ_LUA_COUNTERS];
static uint32_t fuzz_prev_loc;

static lua_State *fuzz_L;
static int fuzz_fn_ref = LUA_NOREF;
static unsigned long fuzz_runs;

static void fuzz_preload(lua_State *L, const char *name, lua_CFunction f)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int fuzz_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

static void fuzz_line_hook(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar))
        return;
    /* a chunk's source string lives as long as its prototype: its address
     * names the chunk */
    uint64_t h =
        (uint64_t)(uintptr_t)ar->source * 0x9E3779B97F4A7C15ull + (uint64_t)ar->currentline;
    uint32_t cur = (uint32_t)(h ^ (h >> 29));
    uint8_t *c = &fuzz_lua_cov[(cur ^ fuzz_prev_loc) % FUZZ_LUA_COUNTERS];
    if (*c != 255)
        (*c)++;
    fuzz_prev_loc = cur >> 1;
}

/* Create the state and run setup (a Lua chunk returning a function). */
static void fuzz_lua_init(const char *setup)
{
    lua_State *L = luaL_newstate();
    if (!L)
        abort();
    lua_setallocf(L, mpic_lua_alloc, NULL); /* as the binary: budgets for bounded calls */
    luaL_openlibs(L);
    if (mpic_rt_init(L) != 0) {
        fprintf(stderr, "fuzz: mpic_rt_init failed\n");
        abort();
    }
    fuzz_preload(L, "mpic.core.util", luaopen_mpic_util);
    fuzz_preload(L, "mpic.core.errors", luaopen_mpic_errors);
    fuzz_preload(L, "mpic.core.yaml", luaopen_mpic_yaml);
    fuzz_preload(L, "mpic.core.sandbox", luaopen_mpic_sandbox);
    fuzz_preload(L, "mpic.core.sign", luaopen_mpic_sign);
    fuzz_preload(L, "mpic.core.dns", luaopen_mpic_dns);
    fuzz_preload(L, "mpic.core.http", luaopen_mpic_http);
    fuzz_preload(L, "mpic.core.tls", luaopen_mpic_tls);
    lua_getglobal(L, "package");
    lua_pushstring(L, MPIC_SOURCE_DIR "/lua/?.lua;" MPIC_SOURCE_DIR "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, MPIC_SOURCE_DIR);
    lua_setfield(L, -2, "root");
    lua_pushliteral(L, "fuzz");
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "mpic.paths");
    lua_pop(L, 1);

    lua_pushcfunction(L, fuzz_traceback);
    if (luaL_loadbuffer(L, setup, strlen(setup), "=fuzz_setup") != LUA_OK ||
        lua_pcall(L, 0, 1, -2) != LUA_OK || !lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz: setup failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    fuzz_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    fuzz_L = L;
    lua_sethook(L, fuzz_line_hook, LUA_MASKLINE, 0);
}

/* Call the setup's function with the input as a Lua string. */
static void fuzz_lua_run(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    int top = lua_gettop(L);
    fuzz_prev_loc = 0;
    lua_pushcfunction(L, fuzz_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
        fprintf(stderr, "fuzz: Lua error escaped: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    /* keep memory flat across a long run */
    if (++fuzz_runs % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT);
}

/* The libFuzzer entry points of a target whose Lua setup chunk is `setup`. */
#define FUZZ_LUA_TARGET(setup)                                   \
    int LLVMFuzzerInitialize(int *argc, char ***argv)            \
    {                                                            \
        (void)argc;                                              \
        (void)argv;                                              \
        fuzz_lua_init(setup);                                    \
        return 0;                                                \
    }                                                            \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
    {                                                            \
        fuzz_lua_run(data, size);                                \
        return 0;                                                \
    }

#endif
