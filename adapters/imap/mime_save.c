/*
 * hark: writing attachment blobs to disk under content-addressed names.
 * This is the only file of the MIME parser that does I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "mime_priv.h"

#define EXT_MAX 10

/*
 * The extension of filename, lowercased, letters and digits only, at most
 * EXT_MAX characters, into ext (EXT_MAX + 2 bytes, with its dot); empty
 * when there is none worth keeping.
 */
static void sanitized_ext(const char *filename, const char *ctype, char *ext)
{
    const char *dot = filename ? strrchr(filename, '.') : NULL;
    size_t i, w = 1;

    ext[0] = '\0';
    if (dot == NULL || dot[1] == '\0') {
        if (ctype != NULL && strcmp(ctype, "message/rfc822") == 0) {
            snprintf(ext, EXT_MAX + 2, ".eml");
        }
        return;
    }
    ext[0] = '.';
    for (i = 1; dot[i] != '\0' && w <= EXT_MAX; i++) {
        char c = dot[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            ext[0] = '\0';
            return;
        }
        ext[w++] = c;
    }
    if (dot[i] != '\0') {
        ext[0] = '\0';
        return;
    }
    ext[w] = '\0';
}

/* Write data to path atomically: a temporary file, fsync, rename. 0 or -1. */
static int write_atomic(const char *dir, const char *name, const unsigned char *data, size_t len)
{
    char tmp[4096], path[4096];
    size_t off = 0;
    int fd, rc = -1;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (access(path, F_OK) == 0) {
        return 0;       /* same name, same content */
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            goto out;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0640) < 0 || fsync(fd) < 0) {
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        goto out;
    }
    rc = 0;
    /* Make the rename durable too. */
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return rc;
out:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return rc;
}

/*
 * Save every blob under dir (see mime.h). The name is the SHA-256 of the
 * content in hex plus the sanitized extension of the original filename,
 * so the same file sent twice is stored once. Attachments without a blob
 * keep url NULL.
 */
int hark_mime_save_attachments(struct hark_mime_result *res, const char *dir,
                               const char *url_base, char *why, size_t why_len)
{
    size_t i;

    if (res == NULL || res->msg == NULL || dir == NULL || url_base == NULL) {
        snprintf(why, why_len, "nothing to save");
        return -1;
    }
    for (i = 0; i < res->n_blobs; i++) {
        struct hark_mime_blob *b = &res->blobs[i];
        struct hark_attachment *a;
        unsigned char d[HARK_DIGEST_MAX];
        char hex[65], ext[EXT_MAX + 2], name[96];
        char *url;

        if (b->attachment_index >= res->msg->n_attachments) {
            continue;
        }
        a = &res->msg->attachments[b->attachment_index];
        hark_digest(HARK_SHA256, b->data, b->len, d);
        hark_hex_encode(d, 32, hex, sizeof(hex));
        sanitized_ext(a->filename, a->content_type, ext);
        snprintf(name, sizeof(name), "%s%s", hex, ext);
        if (write_atomic(dir, name, b->data, b->len) < 0) {
            snprintf(why, why_len, "cannot write attachment %s in %s: %s", name, dir,
                     strerror(errno));
            return -1;
        }
        url = hark_asprintf("%s/%s", url_base, name);
        if (url == NULL) {
            snprintf(why, why_len, "out of memory");
            return -1;
        }
        hark_free(a->url);
        a->url = url;
    }
    return 0;
}
