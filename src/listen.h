/*
 * Listening sockets: "host:port", "[v6]:port" and "unix:/path".
 */
#ifndef HARK_LISTEN_H
#define HARK_LISTEN_H

#include <stddef.h>

/*
 * Open a non-blocking listening socket. TCP sockets get SO_REUSEPORT so
 * that every worker can bind its own; a unix socket replaces a stale file.
 * Returns the fd, or -1 with err filled.
 */
int hark_listen_open(const char *addr, char *err, size_t err_len);

/* 1 when addr is a unix socket address. */
int hark_listen_is_unix(const char *addr);

#endif
