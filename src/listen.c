/*
 * Listening sockets for the HTTP front.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"

#define LISTEN_BACKLOG 1024

int hark_listen_is_unix(const char *addr)
{
    return strncmp(addr, "unix:", 5) == 0;
}

static int open_unix(const char *path, char *err, size_t err_len)
{
    struct sockaddr_un sa = {0};
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, err_len, "unix socket path too long: %s", path);
        return -1;
    }
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* Replace a socket left by a previous run, never any other file. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, err_len, "cannot listen on unix:%s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

int hark_listen_open(const char *addr, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    char host[256];
    const char *colon, *port, *h = addr;
    size_t host_len;
    int fd, one = 1, rc;

    if (hark_listen_is_unix(addr)) {
        return open_unix(addr + 5, err, err_len);
    }
    colon = strrchr(addr, ':');
    if (colon == NULL) {
        snprintf(err, err_len, "listen address \"%s\" has no port", addr);
        return -1;
    }
    port = colon + 1;
    host_len = (size_t)(colon - addr);
    if (host_len >= 2 && addr[0] == '[' && addr[host_len - 1] == ']') {
        h = addr + 1;
        host_len -= 2;
    }
    if (host_len >= sizeof(host)) {
        snprintf(err, err_len, "listen address \"%s\" is too long", addr);
        return -1;
    }
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host_len ? host : NULL, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_len, "cannot resolve listen address \"%s\": %s", addr, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}
