/*
 * lua_sandbox.c: bounded calls for untrusted Lua code (policies, challenge
 * files), the module "mpic.core.sandbox":
 *
 *   sandbox.new{instructions=N, memory=BYTES, strings=TABLE, yieldable=BOOL}
 *       -> box: the limits of one call at a time.
 *   sandbox.call(box, fn, ...) -> true, results... | nil, kind, message
 *       Runs fn on the calling thread under the box's limits. kind is
 *       "instructions", "memory" or "error". Calls nest (the inner box's
 *       limits apply inside, the outer's after it). Once a limit is hit every
 *       further instruction of the call raises, so a pcall inside cannot
 *       swallow it. With yieldable, fn may yield (through sandbox.unbounded
 *       functions only: a check's probes); the limits follow the thread
 *       across the yield. An interrupt (Ctrl-C in the REPL) is re-raised.
 *   sandbox.unbounded(fn) -> function calling fn with the caller's limits
 *       paused (trusted code: probes); errors pass through.
 *   sandbox.strings(max_bytes) -> a fresh copy of the string library without
 *       dump, whose rep is capped at max_bytes and whose find, match, gmatch
 *       and gsub first bound the matcher's work (below).
 *   sandbox.install_string_index() makes the strings' shared metatable
 *       dispatch on the running thread: s:method() inside a bounded call
 *       resolves in the box's strings table, elsewhere in the plain string
 *       library (without dump).
 *   sandbox.pattern_cost(kind, s, p [, plain]) -> the bound (for tests).
 *   sandbox.copy(v, what, max_items, max_depth [, null [, array_mt [, paths]]])
 *       -> true, copy | false, message: a deep copy of plain data (strings,
 *       numbers, booleans, `null`, tables of them) with raw access only (no
 *       metamethod runs), each table created at its final size; a copied
 *       table keeps `array_mt` when it had it, no other metatable. Refuses
 *       other value or key types, more than max_items entries and tables
 *       nested deeper than max_depth; with `paths` the message names the
 *       path of keys to the problem ("what.k1.k2"). Inside a bounded call the
 *       entries copied are charged to its instruction limit.
 *   sandbox.view(t, wrappers, make, max_items, max_depth [, null [, array_mt]])
 *       -> a new table with t's fields (raw): a function replaced by
 *       wrappers[fn] (made by make(key, fn) and kept there the first time),
 *       a table by its copy as sandbox.copy makes it (a field that cannot
 *       be copied is left out), anything else as it is. A check's probe.
 *
 * Instructions: a count hook on the thread, set for the call and removed
 * after it, charges `period` instructions per firing (limit / 100).
 * Memory: mpic_lua_alloc charges every growth of a block while the box is
 * active (its call runs and no unbounded function is in progress) and the
 * running task is the one that started the call; the bytes are allocated
 * bytes (frees are not credited), so the budget cannot be gamed by garbage.
 * Patterns: Lua's matcher runs in C where the count hook cannot reach, so
 * every find/match/gmatch/gsub is charged, before it runs, a sound upper
 * bound of its backtracking work (see pattern_cost) against the instruction
 * limit: refused (a catchable error) when the bound alone exceeds the limit,
 * and the limit is reached when it exceeds what is left.
 *
 * Uses: Lua 5.4 C API; task.h (the running task, the interrupt flag);
 * lua_opts.h (the options of sandbox.new).
 */
#include "lua_opts.h"
#include "lua_sandbox.h"
#include "task.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BOX_MT "mpic.sandbox.box"
#define MAX_QUANTIFIED 32         /* quantified items analysed per pattern */
#define UNBOXED_PATTERN_STEPS 1e8 /* bound for pattern calls outside any box */
#define COST_INFINITE 1e30

enum { EX_INSTR = 1, EX_MEM = 2 };
enum { PK_FIND, PK_MATCH, PK_GMATCH, PK_GSUB };

struct box {
    lua_Integer instr_limit, instr_used;
    size_t mem_limit, mem_used;
    int period;
    int yieldable;
    int running, paused, exceeded;
    lua_State *L;
    const void *owner; /* the task running the call */
    lua_Hook old_hook;
    int old_mask, old_count;
};

static struct box *active; /* the box charged by the allocator */
static char running_key;   /* registry: thread -> box (weak keys) */

void *mpic_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (!ptr)
        osize = 0;
    struct box *b = active;
    if (b && nsize > osize && !b->paused && b->owner == mpic_rt_running()) {
        size_t d = nsize - osize;
        if (b->mem_used + d > b->mem_limit) {
            b->exceeded |= EX_MEM;
            return NULL;
        }
        b->mem_used += d;
    }
    return realloc(ptr, nsize);
}

/* Push the box running on thread L (or nil); returns it or NULL. */
static struct box *push_box(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
    lua_pushthread(L);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    struct box *b = luaL_testudata(L, -1, BOX_MT);
    return (b && b->running) ? b : NULL;
}

static struct box *box_of(lua_State *L)
{
    struct box *b = push_box(L);
    lua_pop(L, 1);
    return b;
}

/* thread L -> the box at boxidx, or no box when boxidx is 0 */
static void set_running(lua_State *L, int boxidx)
{
    if (boxidx)
        boxidx = lua_absindex(L, boxidx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
    lua_pushthread(L);
    if (boxidx)
        lua_pushvalue(L, boxidx);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct box *b = box_of(L);
    if (!b)
        return;
    if (mpic_rt_interrupted())
        luaL_error(L, "interrupted");
    if (b->paused)
        return;
    if (b->exceeded) {
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        if (b->exceeded & EX_MEM)
            luaL_error(L, "memory limit (%I bytes) exceeded", (lua_Integer)b->mem_limit);
        luaL_error(L, "instruction limit (%I) exceeded", b->instr_limit);
    }
    b->instr_used += b->period;
    if (b->instr_used >= b->instr_limit) {
        b->exceeded |= EX_INSTR;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "instruction limit (%I) exceeded", b->instr_limit);
    }
}

/* ---- boxes and calls ------------------------------------------------------ */

static lua_Integer opt_field(lua_State *L, const char *k, lua_Integer def, lua_Integer min)
{
    lua_getfield(L, 1, k);
    lua_Integer v = def;
    if (!lua_isnil(L, -1)) {
        int isint;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < min)
            luaL_error(L, "sandbox.new: %s must be an integer >= %I", k, min);
    }
    lua_pop(L, 1);
    return v;
}

static int l_new(lua_State *L)
{
    static const char *const known[] = {"instructions", "memory", "yieldable", "strings", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    mpic_opt_check_keys(L, 1, "sandbox.new: ", known);
    lua_Integer instr = opt_field(L, "instructions", 5000000, 1000);
    lua_Integer mem = opt_field(L, "memory", 64 << 20, 4096);
    int yieldable = mpic_opt_bool(L, 1, "sandbox.new: ", "yieldable", 0);
    struct box *b = lua_newuserdatauv(L, sizeof *b, 2);
    memset(b, 0, sizeof *b);
    b->instr_limit = instr;
    b->mem_limit = (size_t)mem;
    b->yieldable = yieldable;
    lua_Integer period = instr / 100;
    b->period = period < 1 ? 1 : (period > 100000 ? 100000 : (int)period);
    lua_getfield(L, 1, "strings");
    if (!lua_istable(L, -1) && !lua_isnil(L, -1))
        return luaL_error(L, "sandbox.new: strings must be a table");
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, BOX_MT);
    return 1;
}

/* The text of an error value without running metamethods. */
static void push_error_text(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        lua_pushstring(L, lua_tostring(L, idx));
    else if (t == LUA_TNIL || t == LUA_TBOOLEAN)
        lua_pushstring(L, t == LUA_TNIL ? "nil" : (lua_toboolean(L, idx) ? "true" : "false"));
    else
        lua_pushfstring(L, "(error object of type %s)", lua_typename(L, t));
}

static int call_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    struct box *b = lua_touserdata(L, 1);
    if (active == b)
        active = NULL;
    if (lua_gethook(L) == count_hook)
        lua_sethook(L, b->old_hook, b->old_mask, b->old_count);
    b->running = 0;
    b->paused = 0;
    b->L = NULL;
    /* back to the enclosing call's box on this thread, if any */
    lua_getiuservalue(L, 1, 2);
    struct box *outer = luaL_testudata(L, -1, BOX_MT);
    if (outer && outer->running) {
        set_running(L, -1);
        if (!outer->paused)
            active = outer;
    } else {
        set_running(L, 0);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 2);
    int ok = status == LUA_OK || status == LUA_YIELD;
    if (!ok && mpic_rt_interrupted())
        return lua_error(L); /* the whole task stops */
    if (ok && !b->exceeded) {
        lua_pushboolean(L, 1);
        lua_replace(L, 1);
        return lua_gettop(L);
    }
    int top = lua_gettop(L);
    lua_pushnil(L);
    if (b->exceeded & EX_MEM) {
        lua_pushliteral(L, "memory");
        lua_pushfstring(L, "memory limit (%I bytes) exceeded", (lua_Integer)b->mem_limit);
    } else if (b->exceeded & EX_INSTR) {
        lua_pushliteral(L, "instructions");
        lua_pushfstring(L, "instruction limit (%I) exceeded", b->instr_limit);
    } else {
        lua_pushliteral(L, "error");
        push_error_text(L, top);
    }
    return 3;
}

static int l_call(lua_State *L)
{
    struct box *b = luaL_checkudata(L, 1, BOX_MT);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (b->running)
        return luaL_error(L, "sandbox.call: this box is already running a call");
    /* a call inside another (loading the challenge registry from a check):
     * the inner box's limits apply inside it, the outer's again after it */
    if (!push_box(L)) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    lua_setiuservalue(L, 1, 2);
    b->running = 1;
    b->paused = 0;
    b->exceeded = 0;
    b->instr_used = 0;
    b->mem_used = 0;
    b->L = L;
    b->owner = mpic_rt_running();
    set_running(L, 1);
    b->old_hook = lua_gethook(L);
    b->old_mask = lua_gethookmask(L);
    b->old_count = lua_gethookcount(L);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, b->period);
    active = b;
    int nargs = lua_gettop(L) - 2;
    int st;
    if (b->yieldable)
        st = lua_pcallk(L, nargs, LUA_MULTRET, 0, 0, call_k);
    else
        st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    return call_k(L, st, 0);
}

static int unbounded_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    struct box *b = box_of(L);
    if (b && b->paused > 0 && --b->paused == 0)
        active = b;
    if (status != LUA_OK && status != LUA_YIELD)
        return lua_error(L);
    return lua_gettop(L);
}

static int l_unbounded_call(lua_State *L)
{
    int nargs = lua_gettop(L);
    struct box *b = box_of(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    if (!b) {
        lua_callk(L, nargs, LUA_MULTRET, 0, unbounded_k);
        return lua_gettop(L);
    }
    if (b->exceeded)
        return luaL_error(L, "limit of the bounded call exceeded");
    b->paused++;
    if (active == b)
        active = NULL;
    int st = lua_pcallk(L, nargs, LUA_MULTRET, 0, 0, unbounded_k);
    return unbounded_k(L, st, 0);
}

static int l_unbounded(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_unbounded_call, 1);
    return 1;
}

/* sandbox.usage() -> instructions used, bytes allocated by the running box
 * of this thread (nil outside one). */
static int l_usage(lua_State *L)
{
    struct box *b = box_of(L);
    if (!b)
        return 0;
    lua_pushinteger(L, b->instr_used);
    lua_pushinteger(L, (lua_Integer)b->mem_used);
    return 2;
}

/* ---- pattern cost ----------------------------------------------------------
 * Lua's matcher backtracks only at quantified single-character items: `?`
 * tries two ways, `*`, `+` and `-` try at most r+1 lengths where r is the
 * longest run of characters of the item's class anywhere in the subject.
 * So the number of times the matcher reaches an item is at most the product
 * of those branchings over the items before it (mult), and the work there
 * is O(1), O(r) for counting a run, or O(n) for %b and back-references.
 * The bound is the sum over items of mult * work, times the number of
 * start positions (1 when anchored; n+1 for find/match; 2(n+1) for gmatch
 * and gsub, which may retry a position after an empty match). */

static int match_class(int c, int cl)
{
    int res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    default: return cl == c;
    }
    if (isupper(cl))
        res = !res;
    return res;
}

/* p at '[', ec at the closing ']'. */
static int match_set(int c, const unsigned char *p, const unsigned char *ec)
{
    int sig = 1;
    p++;
    if (p < ec && *p == '^') {
        sig = 0;
        p++;
    }
    while (p < ec) {
        if (*p == '%' && p + 1 < ec) {
            if (match_class(c, p[1]))
                return sig;
            p += 2;
        } else if (p + 2 < ec && p[1] == '-') {
            if (p[0] <= c && c <= p[2])
                return sig;
            p += 3;
        } else {
            if (*p == c)
                return sig;
            p++;
        }
    }
    return !sig;
}

/* End of the single-character class at p, or NULL when malformed. */
static const unsigned char *class_end(const unsigned char *p, const unsigned char *e)
{
    unsigned char c = *p++;
    if (c == '%')
        return p < e ? p + 1 : NULL;
    if (c == '[') {
        if (p < e && *p == '^')
            p++;
        do {
            if (p >= e)
                return NULL;
            c = *p++;
            if (c == '%') {
                if (p >= e)
                    return NULL;
                p++;
            }
        } while (p >= e || *p != ']');
        return p + 1;
    }
    return p;
}

static int member(int c, const unsigned char *p, const unsigned char *ep)
{
    if (*p == '.')
        return 1;
    if (*p == '%')
        return match_class(c, p[1]);
    if (*p == '[')
        return match_set(c, p, ep - 1);
    return *p == c;
}

static size_t longest_run(const unsigned char *s, size_t n, const unsigned char *p,
                          const unsigned char *ep)
{
    unsigned char in[256];
    for (int c = 0; c < 256; c++)
        in[c] = (unsigned char)member(c, p, ep);
    size_t best = 0, cur = 0;
    for (size_t i = 0; i < n; i++) {
        cur = in[s[i]] ? cur + 1 : 0;
        if (cur > best)
            best = cur;
    }
    return best;
}

/* The bound in matcher steps; *analysis gets the work spent computing it. */
static double pattern_cost(int kind, const unsigned char *s, size_t n, const unsigned char *p,
                           size_t m, double cap, double *analysis)
{
    const unsigned char *e = p + m;
    double fn = (double)n + 1;
    double starts = (kind == PK_GMATCH || kind == PK_GSUB) ? 2 * fn : fn;
    int quantified = 0;
    *analysis = (double)m;
    if (kind != PK_GMATCH && p < e && *p == '^') {
        starts = 1;
        p++;
    }
    double mult = 1, total = 1;
    while (p < e) {
        if (total * starts > cap)
            return COST_INFINITE;
        unsigned char c = *p;
        if (c == '(' || c == ')') {
            total += mult;
            p += (c == '(' && p + 1 < e && p[1] == ')') ? 2 : 1;
            continue;
        }
        if (c == '$' && p + 1 == e) {
            total += mult;
            p++;
            continue;
        }
        if (c == '%' && p + 1 < e) {
            unsigned char d = p[1];
            if (d == 'b') {
                total += mult * fn;
                p += 4;
                continue;
            }
            if (d == 'f') {
                p += 2;
                if (p >= e || *p != '[')
                    return total * starts; /* malformed: the matcher raises */
                const unsigned char *ep = class_end(p, e);
                if (!ep)
                    return total * starts;
                total += mult;
                p = ep;
                continue;
            }
            if (d >= '0' && d <= '9') {
                total += mult * fn;
                p += 2;
                continue;
            }
        }
        const unsigned char *ep = class_end(p, e);
        if (!ep)
            return total * starts;
        if (ep < e && (*ep == '*' || *ep == '+' || *ep == '-')) {
            if (++quantified > MAX_QUANTIFIED)
                return COST_INFINITE;
            double r = (double)longest_run(s, n, p, ep) + 1;
            *analysis += (double)n;
            total += mult * r;
            mult *= r;
            p = ep + 1;
        } else if (ep < e && *ep == '?') {
            total += mult;
            mult *= 2;
            p = ep + 1;
        } else {
            total += mult;
            p = ep;
        }
    }
    if (total * starts > cap)
        return COST_INFINITE;
    return total * starts;
}

/* Charge cost steps to the thread's box; raises when the bound is refused. */
static void charge(lua_State *L, const char *fname, size_t n, double cost, double analysis)
{
    struct box *b = box_of(L);
    if (!b || b->paused) {
        if (cost > UNBOXED_PATTERN_STEPS)
            luaL_error(L, "%s: pattern too costly for a subject of %I bytes", fname,
                       (lua_Integer)n);
        return;
    }
    b->instr_used += (lua_Integer)analysis;
    if (cost > (double)b->instr_limit)
        luaL_error(L,
                   "%s: pattern too costly for a subject of %I bytes (its backtracking bound "
                   "exceeds the instruction limit)",
                   fname, (lua_Integer)n);
    if (cost > (double)(b->instr_limit - b->instr_used)) {
        b->exceeded |= EX_INSTR;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "instruction limit (%I) exceeded", b->instr_limit);
    }
    b->instr_used += (lua_Integer)cost;
}

static const char *const pattern_names[] = {"string.find", "string.match", "string.gmatch",
                                            "string.gsub"};

static double cap_of(lua_State *L)
{
    struct box *b = box_of(L);
    if (!b || b->paused)
        return UNBOXED_PATTERN_STEPS;
    return (double)b->instr_limit;
}

static int l_pattern(lua_State *L)
{
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    size_t n, m;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &m);
    double cost, analysis = 0;
    if (kind == PK_FIND && lua_toboolean(L, 4))
        cost = ((double)n + 1) * ((double)m + 1);
    else
        cost = pattern_cost(kind, (const unsigned char *)s, n, (const unsigned char *)p, m,
                            cap_of(L), &analysis);
    charge(L, pattern_names[kind], n, cost, analysis);
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_pattern_cost(lua_State *L)
{
    static const char *const kinds[] = {"find", "match", "gmatch", "gsub", NULL};
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    size_t n, m;
    const char *s = luaL_checklstring(L, 2, &n);
    const char *p = luaL_checklstring(L, 3, &m);
    double analysis;
    double c = lua_toboolean(L, 4)
                   ? ((double)n + 1) * ((double)m + 1)
                   : pattern_cost(kind, (const unsigned char *)s, n, (const unsigned char *)p, m,
                                  COST_INFINITE / 10, &analysis);
    lua_pushnumber(L, c);
    return 1;
}

/* string.rep capped at max bytes (upvalue 2), count included: an empty
 * string repeated 2^62 times is a loop in C, not an allocation. */
static int l_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer count = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    lua_Integer max = lua_tointeger(L, lua_upvalueindex(2));
    if (count > 0) {
        double size = ((double)l + (double)lsep) * (double)count;
        if (count > max || size > (double)max)
            return luaL_error(L, "string.rep: result larger than %I bytes", max);
    }
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, 1);
    return 1;
}

static int l_strings(lua_State *L)
{
    lua_Integer max = luaL_checkinteger(L, 1);
    luaL_argcheck(L, max > 0, 1, "must be positive");
    lua_newtable(L);
    int t = lua_gettop(L);
    lua_getglobal(L, "string");
    int lib = lua_gettop(L);
    if (!lua_istable(L, lib))
        return luaL_error(L, "sandbox.strings: no string library");
    lua_pushnil(L);
    while (lua_next(L, lib)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "dump") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, t);
    }
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};
    for (int k = 0; k < 4; k++) {
        lua_getfield(L, lib, names[k]);
        lua_pushinteger(L, k);
        lua_pushcclosure(L, l_pattern, 2);
        lua_setfield(L, t, names[k]);
    }
    lua_getfield(L, lib, "rep");
    lua_pushinteger(L, max);
    lua_pushcclosure(L, l_rep, 2);
    lua_setfield(L, t, "rep");
    lua_settop(L, t);
    return 1;
}

/* __index of the strings' metatable: the running box's strings table, else
 * the plain library (upvalue 1). */
static int l_string_index(lua_State *L)
{
    struct box *b = push_box(L);
    if (b && !b->paused && lua_getiuservalue(L, -1, 1) == LUA_TTABLE) {
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int l_install_string_index(lua_State *L)
{
    lua_pushliteral(L, "");
    if (!lua_getmetatable(L, -1))
        return luaL_error(L, "strings have no metatable");
    lua_getfield(L, -1, "__index");
    if (lua_tocfunction(L, -1) == l_string_index)
        return 0;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_getglobal(L, "string");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "dump") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    lua_pushcclosure(L, l_string_index, 1);
    lua_setfield(L, -2, "__index");
    return 0;
}

/* ---- copies across the boundary ---------------------------------------- */

#define COPY_MAX_DEPTH 256

struct copyctx {
    lua_Integer count, max_items;
    int max_depth, paths, nullidx, mtidx, whatidx;
    int keyidx[COPY_MAX_DEPTH + 2]; /* stack index of the key at each depth */
};

static int is_null(lua_State *L, struct copyctx *c, int idx)
{
    return c->nullidx && lua_rawequal(L, idx, c->nullidx);
}

/* Push "what[.k1.k2...]" with the keys of depths 1..upto (paths only). */
static void push_path(lua_State *L, struct copyctx *c, int upto)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushvalue(L, c->whatidx);
    luaL_addvalue(&b);
    for (int d = 1; c->paths && d <= upto; d++) {
        luaL_addchar(&b, '.');
        luaL_tolstring(L, c->keyidx[d], NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
}

/* The message of a failed copy: pushes it, returns -1. */
static int copy_fail(lua_State *L, struct copyctx *c, int upto, const char *fmt, const char *arg)
{
    push_path(L, c, upto);
    const char *path = lua_tostring(L, -1);
    if (arg)
        lua_pushfstring(L, fmt, path, arg);
    else
        lua_pushfstring(L, fmt, path);
    return -1;
}

/* Copies the table at src (depth: 1 for the outermost) onto the top of the
 * stack; 0, or -1 with the message on the top. */
static int copy_table(lua_State *L, int src, int depth, struct copyctx *c)
{
    if (depth > c->max_depth)
        return copy_fail(L, c, depth - 1, "%s is nested too deeply", NULL);
    luaL_checkstack(L, 8, "copy");
    /* sizes first, so the copy never grows */
    lua_Unsigned narr = lua_rawlen(L, src);
    int nrec = 0;
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pop(L, 1);
        nrec++;
    }
    if (narr > (lua_Unsigned)nrec)
        narr = 0;
    lua_createtable(L, (int)narr, nrec - (int)narr);
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, src)) {
        int k = lua_gettop(L) - 1, v = k + 1;
        if (++c->count > c->max_items) {
            lua_pushvalue(L, c->whatidx);
            lua_pushfstring(L, "%s is too large", lua_tostring(L, -1));
            return -1;
        }
        int kt = lua_type(L, k);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
            return copy_fail(L, c, depth - 1, c->paths ? "%s has a %s key" : "%s has a %s key",
                             lua_typename(L, kt));
        int vt = lua_type(L, v);
        c->keyidx[depth] = k;
        if (vt == LUA_TTABLE && !is_null(L, c, v)) {
            if (copy_table(L, v, depth + 1, c))
                return -1;
            lua_replace(L, v);
        } else if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN &&
                   !is_null(L, c, v)) {
            return copy_fail(L, c, depth, "%s holds a %s", lua_typename(L, vt));
        }
        lua_pushvalue(L, k);
        lua_insert(L, v);
        lua_rawset(L, out);
    }
    if (c->mtidx && lua_getmetatable(L, src)) {
        int same = lua_rawequal(L, -1, c->mtidx);
        lua_pop(L, 1);
        if (same) {
            lua_pushvalue(L, c->mtidx);
            lua_setmetatable(L, out);
        }
    }
    return 0;
}

static int l_copy(lua_State *L)
{
    struct copyctx c;
    memset(&c, 0, sizeof c);
    luaL_checkstring(L, 2);
    c.max_items = luaL_checkinteger(L, 3);
    lua_Integer md = luaL_checkinteger(L, 4);
    luaL_argcheck(L, md >= 0 && md <= COPY_MAX_DEPTH, 4, "depth out of range");
    c.max_depth = (int)md;
    lua_settop(L, 7);
    c.whatidx = 2;
    c.nullidx = lua_isnil(L, 5) ? 0 : 5;
    c.mtidx = lua_istable(L, 6) ? 6 : 0;
    c.paths = lua_toboolean(L, 7);
    int t = lua_type(L, 1);
    if (t != LUA_TTABLE || is_null(L, &c, 1)) {
        if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN || t == LUA_TNIL ||
            is_null(L, &c, 1)) {
            lua_pushboolean(L, 1);
            lua_pushvalue(L, 1);
            return 2;
        }
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "%s holds a %s", lua_tostring(L, 2), lua_typename(L, t));
        return 2;
    }
    int rc = copy_table(L, 1, 1, &c);
    /* the entries copied count against a bounded call's instructions */
    struct box *b = box_of(L);
    if (b && !b->paused) {
        b->instr_used += c.count;
        if (b->instr_used >= b->instr_limit) {
            b->exceeded |= EX_INSTR;
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
            return luaL_error(L, "instruction limit (%I) exceeded", b->instr_limit);
        }
    }
    lua_pushboolean(L, rc == 0);
    lua_insert(L, -2);
    return 2;
}

static int l_view(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    struct copyctx c;
    memset(&c, 0, sizeof c);
    c.max_items = luaL_checkinteger(L, 4);
    lua_Integer md = luaL_checkinteger(L, 5);
    luaL_argcheck(L, md >= 0 && md <= COPY_MAX_DEPTH, 5, "depth out of range");
    c.max_depth = (int)md;
    lua_settop(L, 7);
    c.nullidx = lua_isnil(L, 6) ? 0 : 6;
    c.mtidx = lua_istable(L, 7) ? 7 : 0;
    if (!lua_istable(L, 1)) {
        lua_newtable(L);
        return 1;
    }
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        n++;
    }
    lua_createtable(L, 0, n);
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int k = lua_gettop(L) - 1, v = k + 1;
        luaL_checkstack(L, 8, "view");
        switch (lua_type(L, v)) {
        case LUA_TFUNCTION:
            lua_pushvalue(L, v);
            if (lua_rawget(L, 2) == LUA_TNIL) {
                lua_pop(L, 1);
                lua_pushvalue(L, 3);
                lua_pushvalue(L, k);
                lua_pushvalue(L, v);
                lua_call(L, 2, 1);
                lua_pushvalue(L, v);
                lua_pushvalue(L, -2);
                lua_rawset(L, 2);
            }
            lua_pushvalue(L, k);
            lua_insert(L, -2);
            lua_rawset(L, out);
            break;
        case LUA_TTABLE:
            if (is_null(L, &c, v)) {
                lua_pushvalue(L, k);
                lua_pushvalue(L, v);
                lua_rawset(L, out);
                break;
            }
            lua_pushliteral(L, "probe.");
            luaL_tolstring(L, k, NULL);
            lua_concat(L, 2);
            c.whatidx = lua_gettop(L);
            c.count = 0;
            if (copy_table(L, v, 1, &c) == 0) {
                lua_pushvalue(L, k);
                lua_insert(L, -2);
                lua_rawset(L, out);
            }
            lua_settop(L, v);
            break;
        default:
            lua_pushvalue(L, k);
            lua_pushvalue(L, v);
            lua_rawset(L, out);
            break;
        }
        lua_settop(L, k);
    }
    return 1;
}

static const luaL_Reg funcs[] = {{"new", l_new},
                                 {"call", l_call},
                                 {"unbounded", l_unbounded},
                                 {"usage", l_usage},
                                 {"strings", l_strings},
                                 {"install_string_index", l_install_string_index},
                                 {"pattern_cost", l_pattern_cost},
                                 {"copy", l_copy},
                                 {"view", l_view},
                                 {NULL, NULL}};

int luaopen_mpic_sandbox(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
    if (lua_isnil(L, -1)) {
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
