/*
 * lua_fs.h: the file-system part of "mpic.core.util" (lua_fs.c).
 */
#ifndef MPIC_LUA_FS_H
#define MPIC_LUA_FS_H

#include <lua.h>

/* Sets util.listdir, util.filetype and util.mkdir on the table on top of the stack. */
void mpic_fs_register(lua_State *L);

#endif
