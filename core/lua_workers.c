/*
 * lua_workers.c: the Lua module "mpic.core.workers", the process side of
 * `mpic serve --workers N` and `mpic agent --workers N` (lua/mpic/service/workers.lua):
 *   bind(address, port, n) -> {fd, ...}, port | nil, kind, detail
 *       n listening TCP sockets on one address and port, each with
 *       SO_REUSEPORT (the kernel spreads new connections over them by their
 *       addresses and ports), close-on-exec, backlog 4096; port 0 binds the
 *       first to an ephemeral port and the others to the same one.
 *   close(fd)
 *   spawn(argv, fd) -> pid | nil, "internal", detail
 *       fork and exec this binary (/proc/self/exe) with argv (argv[1] is its
 *       name); fd, and only it among our descriptors, is inherited. The child
 *       gets SIGTERM when its parent dies (PR_SET_PDEATHSIG).
 *   reap() -> {{pid=, code=} | {pid=, signal=NAME}, ...}  (children that
 *       exited, without blocking)
 *   kill(pid, NAME) -> true | nil, "internal", detail   (NAME: TERM, HUP,
 *       INT, KILL, QUIT, USR1, USR2)
 *   cpus() -> the number of CPUs this process may run on
 *   mkdtemp(template) -> path | nil, "internal", detail (mode 0700)
 *   getpid() -> pid
 *   run(argv, timeout_ms) -> exit code | nil, "timeout" | "internal", detail
 *       run a program (argv[1], looked up in PATH) without a shell and wait
 *       for it, blocking, at most timeout_ms (then it is killed: SIGKILL).
 *       Its standard streams are ours. For commands that start a lab.
 * Uses: POSIX sockets, fork/exec, posix_spawn, waitpid; nothing of the
 * event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define WORKERS_MAX 64
#define WORKERS_BACKLOG 4096
#define WORKERS_MAX_ARGS 256

int luaopen_mpic_workers(lua_State *L);

static int fail_errno(lua_State *L, const char *what, int err)
{
    lua_pushnil(L);
    lua_pushliteral(L, "internal");
    lua_pushfstring(L, "%s: %s", what, strerror(err));
    return 3;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int l_bind(lua_State *L)
{
    const char *address = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
    luaL_argcheck(L, n >= 1 && n <= WORKERS_MAX, 3, "1 to 64 sockets");
    int fds[WORKERS_MAX];
    int made = 0, p = (int)port;
    for (; made < n; made++) {
        struct addrinfo hints = {0}, *ai = NULL;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%d", p);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
        int gai = getaddrinfo(address, portstr, &hints, &ai);
        if (gai != 0 || !ai) {
            for (int i = 0; i < made; i++)
                close(fds[i]);
            lua_pushnil(L);
            lua_pushliteral(L, "connect");
            lua_pushfstring(L, "cannot listen on %s port %d: %s", address, p,
                            gai ? gai_strerror(gai) : "no address");
            return 3;
        }
        int one = 1, err = 0;
        /* F_DUPFD_CLOEXEC to 3 and up: never one of the standard descriptors */
        int raw = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        int fd = raw < 0 ? -1 : fcntl(raw, F_DUPFD_CLOEXEC, 3);
        if (raw >= 0 && fd != raw)
            close(raw);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, WORKERS_BACKLOG) != 0)
            err = errno;
        freeaddrinfo(ai);
        if (err) {
            if (fd >= 0)
                close(fd);
            for (int i = 0; i < made; i++)
                close(fds[i]);
            lua_pushnil(L);
            lua_pushliteral(L, "connect");
            lua_pushfstring(L, "cannot listen on %s port %d: %s", address, p, strerror(err));
            return 3;
        }
        fds[made] = fd;
        if (p == 0)
            p = bound_port(fd);
    }
    lua_createtable(L, (int)n, 0);
    for (int i = 0; i < made; i++) {
        lua_pushinteger(L, fds[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, p);
    return 2;
}

static int l_close(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd > 2 && fd <= INT_MAX, 1, "not a socket of workers.bind");
    close((int)fd);
    return 0;
}

static const struct {
    const char *name;
    int signo;
} names[] = {{"TERM", SIGTERM}, {"HUP", SIGHUP},   {"INT", SIGINT},   {"KILL", SIGKILL},
             {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"SEGV", SIGSEGV},
             {"ABRT", SIGABRT}, {"CHLD", SIGCHLD}, {"PIPE", SIGPIPE}};

static const char *signame(int signo)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].signo == signo)
            return names[i].name;
    return NULL;
}

/* Fill argv (n + 1 slots, kept alive by the table at index t) from the
 * strings of that table; raises on anything else. */
static void argv_of(lua_State *L, int t, lua_Integer n, char **argv, const char *who)
{
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: argument %d is not a string", who, (int)i);
        argv[i - 1] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    argv[n] = NULL;
}

static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer keep = luaL_checkinteger(L, 2);
    luaL_argcheck(L, keep > 2 && keep <= INT_MAX, 2, "not a socket of workers.bind");
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= WORKERS_MAX_ARGS, 1, "1 to 256 arguments");
    char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    argv_of(L, 1, n, argv, "workers.spawn");
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return fail_errno(L, "workers.spawn: /proc/self/exe", errno);
    exe[len] = '\0';
    /* no signal handler of ours may run in the child between fork and exec
     * (the loop's handlers write to descriptors the parent reads) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].signo != SIGKILL)
                signal(names[i].signo, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fl = fcntl((int)keep, F_GETFD);
        if (fl < 0 || fcntl((int)keep, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(exe, argv);
        _exit(127);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return fail_errno(L, "workers.spawn: fork", err);
    lua_pushinteger(L, pid);
    return 1;
}

static int l_reap(lua_State *L)
{
    lua_newtable(L);
    int st, i = 0;
    pid_t pid;
    while (i < 1024 && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, pid);
        lua_setfield(L, -2, "pid");
        if (WIFEXITED(st)) {
            lua_pushinteger(L, WEXITSTATUS(st));
            lua_setfield(L, -2, "code");
        } else if (WIFSIGNALED(st)) {
            const char *nm = signame(WTERMSIG(st));
            if (nm)
                lua_pushstring(L, nm);
            else
                lua_pushfstring(L, "%d", WTERMSIG(st));
            lua_setfield(L, -2, "signal");
        }
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    const char *name = luaL_checkstring(L, 2);
    luaL_argcheck(L, pid > 1 && pid <= INT_MAX, 1, "not a child's pid");
    int signo = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0)
            signo = names[i].signo;
    if (!signo)
        return luaL_error(L, "workers.kill: unknown signal name %s", name);
    if (kill((pid_t)pid, signo) != 0)
        return fail_errno(L, "workers.kill", errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cpus(lua_State *L)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n < 1 ? 1 : n);
    return 1;
}

static int l_mkdtemp(lua_State *L)
{
    size_t len;
    const char *t = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len >= 6 && len < PATH_MAX && strcmp(t + len - 6, "XXXXXX") == 0, 1,
                  "a template ending in XXXXXX");
    char buf[PATH_MAX];
    memcpy(buf, t, len + 1);
    if (!mkdtemp(buf))
        return fail_errno(L, "workers.mkdtemp", errno);
    lua_pushstring(L, buf);
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

static int l_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer timeout_ms = luaL_checkinteger(L, 2);
    luaL_argcheck(L, timeout_ms > 0 && timeout_ms <= 3600000, 2, "1 ms to 1 hour");
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= WORKERS_MAX_ARGS, 1, "1 to 256 arguments");
    char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    argv_of(L, 1, n, argv, "workers.run");
    /* the child starts with default signal dispositions and nothing blocked */
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return fail_errno(L, argv[0], rc);
    struct timespec step = {0, 10 * 1000000L};
    for (lua_Integer waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st)) {
                lua_pushinteger(L, WEXITSTATUS(st));
                return 1;
            }
            lua_pushnil(L);
            lua_pushliteral(L, "internal");
            lua_pushfstring(L, "%s: killed by signal %d", argv[0], WTERMSIG(st));
            return 3;
        }
        if (r < 0 && errno != EINTR)
            return fail_errno(L, "workers.run: waitpid", errno);
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            lua_pushnil(L);
            lua_pushliteral(L, "timeout");
            lua_pushfstring(L, "%s: still running after %d ms, killed", argv[0], (int)timeout_ms);
            return 3;
        }
        nanosleep(&step, NULL);
    }
}

static const luaL_Reg funcs[] = {
    {"bind", l_bind}, {"close", l_close}, {"spawn", l_spawn},     {"reap", l_reap},
    {"kill", l_kill}, {"cpus", l_cpus},   {"mkdtemp", l_mkdtemp}, {"getpid", l_getpid},
    {"run", l_run},   {NULL, NULL}};

int luaopen_mpic_workers(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
