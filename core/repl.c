/*
 * repl.c: the interactive Lua REPL of `mpic repl`. Reads lines with libedit
 * (line editing, persistent history in ~/.mpic_history, tab completion),
 * compiles each one the way lua.c does ("return <line>" first so that
 * expressions print, multi-line continuation while the chunk ends in
 * <eof>), runs it as the root task and prints its results through
 * lua/mpic/cmd/pretty.lua. Lines starting with ':' are REPL commands handled by
 * lua/mpic/cmd/cli.lua (repl_command); completion candidates come from
 * lua/mpic/cmd/repl.lua (complete). Ctrl-C cancels the running line's task, or
 * discards the line being typed, and never leaves the REPL.
 * Uses: task.h (mpic_rt_run_main, mpic_rt_interrupt), libedit's readline API.
 */
#include "repl.h"
#include "task.h"

#include <editline/readline.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MPIC_REPL_MAX_CANDIDATES 512

static lua_State *repl_L;                  /* the state completion runs in */
static volatile sig_atomic_t got_sigint;   /* Ctrl-C seen */
static volatile sig_atomic_t line_running; /* a line's task is running */
static char *candidates[MPIC_REPL_MAX_CANDIDATES + 1];
static int candidate_count;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
    if (line_running)
        mpic_rt_interrupt();
}

/* require(mod)[field] onto the stack; 0 or -1 (error message on the stack). */
static int push_lua_function(lua_State *L, const char *mod, const char *field)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        return -1;
    lua_getfield(L, -1, field);
    lua_remove(L, -2);
    return 0;
}

/* ---- completion ------------------------------------------------------------- */

static void clear_candidates(void)
{
    for (int i = 0; i < candidate_count; i++) {
        free(candidates[i]);
        candidates[i] = NULL;
    }
    candidate_count = 0;
}

/* Ask mpic.cmd.repl.complete(line_before_cursor, word_start) for candidates. */
static void collect_candidates(int start, int end)
{
    lua_State *L = repl_L;
    int top = lua_gettop(L);
    clear_candidates();
    if (!rl_line_buffer || end < start)
        goto out;
    if (push_lua_function(L, "mpic.cmd.repl", "complete") != 0)
        goto out;
    lua_pushlstring(L, rl_line_buffer, (size_t)end);
    lua_pushinteger(L, start + 1);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1))
        goto out;
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n && candidate_count < MPIC_REPL_MAX_CANDIDATES; i++) {
        lua_rawgeti(L, -1, i);
        const char *s = lua_tostring(L, -1);
        if (s) {
            char *copy = strdup(s);
            if (copy)
                candidates[candidate_count++] = copy;
        }
        lua_pop(L, 1);
    }
out:
    lua_settop(L, top);
}

static char *candidate_generator(const char *text, int state)
{
    static int next;
    (void)text;
    if (state == 0)
        next = 0;
    if (next >= candidate_count)
        return NULL;
    return strdup(candidates[next++]);
}

static char **attempt_completion(const char *text, int start, int end)
{
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0';
    collect_candidates(start, end);
    if (candidate_count == 0)
        return NULL;
    return rl_completion_matches(text, candidate_generator);
}

/* ---- evaluation ------------------------------------------------------------- */

/* Compile a chunk: "return <code>" first (so expressions print), then the
 * code itself. Returns LUA_OK, or an error status with the message on the
 * stack; *incomplete is set when the chunk only lacks its end ("<eof>"). */
static int compile_line(lua_State *L, const char *code, int *incomplete)
{
    *incomplete = 0;
    lua_pushfstring(L, "return %s;", code);
    int st = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    lua_remove(L, -2);
    if (st == LUA_OK)
        return st;
    lua_pop(L, 1);
    st = luaL_loadbuffer(L, code, strlen(code), "=stdin");
    if (st == LUA_ERRSYNTAX) {
        const char *msg = lua_tostring(L, -1);
        size_t ml = strlen(msg);
        if (ml >= 5 && strcmp(msg + ml - 5, "<eof>") == 0)
            *incomplete = 1;
    }
    return st;
}

/* Protected: run the chunk on top as the root task and print its results
 * (or its error) through mpic.cmd.pretty.print_outcome. */
static int prepl_line(lua_State *L)
{
    mpic_rt_run_main(L, 0);
    int r = lua_gettop(L);
    if (push_lua_function(L, "mpic.cmd.pretty", "print_outcome") != 0)
        return lua_error(L);
    lua_pushvalue(L, r);
    lua_call(L, 1, 0);
    return 0;
}

static void run_chunk(lua_State *L)
{
    lua_pushcfunction(L, prepl_line);
    lua_insert(L, -2);
    got_sigint = 0;
    line_running = 1;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    line_running = 0;
    got_sigint = 0;
}

/* Protected: run mpic.cmd.cli.repl_command(line) as the root task (a command may
 * probe, e.g. :perspectives), and report an error it raised. */
static int prepl_command(lua_State *L)
{
    const char *line = lua_tostring(L, 1);
    if (push_lua_function(L, "mpic.cmd.cli", "repl_command") != 0)
        return lua_error(L);
    lua_pushstring(L, line);
    mpic_rt_run_main(L, 1);
    lua_getfield(L, -1, "ok");
    if (!lua_toboolean(L, -1)) {
        lua_getfield(L, -2, "err");
        fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    }
    return 0;
}

static void run_command(lua_State *L, const char *line)
{
    lua_pushcfunction(L, prepl_command);
    lua_pushstring(L, line);
    got_sigint = 0;
    line_running = 1;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    line_running = 0;
    got_sigint = 0;
}

static int setup(lua_State *L, int argc, char **argv)
{
    if (push_lua_function(L, "mpic.cmd.cli", "repl_setup") != 0) {
        fprintf(stderr, "mpic: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "mpic: %s\n", lua_tostring(L, -1));
        return 2;
    }
    if (lua_isstring(L, -1))
        printf("%s\n", lua_tostring(L, -1));
    return 0;
}

/* Append line to *buf (joined with a newline). 0 or -1 on memory failure. */
static int append_line(char **buf, const char *line)
{
    if (!*buf) {
        *buf = strdup(line);
        return *buf ? 0 : -1;
    }
    size_t a = strlen(*buf), b = strlen(line);
    char *nb = realloc(*buf, a + b + 2);
    if (!nb)
        return -1;
    nb[a] = '\n';
    memcpy(nb + a + 1, line, b + 1);
    *buf = nb;
    return 0;
}

int mpic_repl_run(lua_State *L, int argc, char **argv)
{
    char histfile[PATH_MAX] = "";
    const char *home = getenv("HOME");
    struct sigaction sa, old;
    char *buf = NULL;
    int status = 0;

    repl_L = L;
    if (home)
        snprintf(histfile, sizeof histfile, "%s/.mpic_history", home);
    status = setup(L, argc, argv);
    lua_settop(L, 0);
    if (status != 0)
        return status;

    rl_readline_name = "mpic";
    rl_attempted_completion_function = attempt_completion;
    using_history();
    if (*histfile)
        read_history(histfile);

    /* no SA_RESTART: a blocked read at the prompt returns on Ctrl-C */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    for (;;) {
        got_sigint = 0;
        char *line = readline(buf ? ">> " : "mpic> ");
        if (got_sigint) { /* Ctrl-C at the prompt: drop what was typed */
            free(line);
            free(buf);
            buf = NULL;
            fputs("\n", stdout);
            continue;
        }
        if (!line)
            break;
        int rc = append_line(&buf, line);
        free(line);
        if (rc != 0)
            break;
        if (buf[strspn(buf, " \t\n")] == '\0') {
            free(buf);
            buf = NULL;
            continue;
        }
        if (buf[0] == ':') { /* REPL commands are handled in Lua */
            add_history(buf);
            run_command(L, buf);
        } else {
            int incomplete;
            int st = compile_line(L, buf, &incomplete);
            if (incomplete) {
                lua_settop(L, 0);
                continue;
            }
            add_history(buf);
            if (st != LUA_OK)
                fprintf(stderr, "%s\n", lua_tostring(L, -1));
            else
                run_chunk(L);
        }
        lua_settop(L, 0);
        free(buf);
        buf = NULL;
    }
    sigaction(SIGINT, &old, NULL);
    free(buf);
    clear_candidates();
    if (*histfile)
        write_history(histfile);
    putchar('\n');
    repl_L = NULL;
    return 0;
}
