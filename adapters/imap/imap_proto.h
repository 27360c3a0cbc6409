/*
 * hark: IMAP4rev1 client protocol pieces (RFC 3501, 2177, 6851, 7628).
 *
 * Pure functions only: no I/O, no globals, no libevent. The connection
 * code (imap_conn.c) feeds bytes to the framer, hands each complete
 * response to the parser and builds commands with the helpers below, so
 * all of this can be unit-tested and fuzzed.
 *
 * Bounds: a response line (outside literals) is at most IMAP_LINE_MAX
 * bytes, a response holds at most IMAP_LITERALS_MAX literals, each no
 * larger than the caller's max_literal; anything else is a protocol error.
 */
#ifndef HARK_IMAP_PROTO_H
#define HARK_IMAP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IMAP_LINE_MAX 65536
#define IMAP_LITERALS_MAX 16
#define IMAP_TAG_MAX 16
#define IMAP_TEXT_MAX 256
#define IMAP_DEPTH_MAX 8

/* Incremental framing state of one response: zero it to start. */
struct imap_framer {
    size_t pos;         /* bytes of the buffer already examined */
    size_t line_start;  /* start of the current line segment */
    uint64_t lit_left;  /* literal bytes still to come */
    unsigned literals;  /* literals seen in this response */
};

/*
 * Examine buf[0..len), the bytes received since the response started
 * (the same prefix on every call, growing). Returns the length of the
 * complete response (CRLF-terminated line, literals included) when it is
 * there, 0 when more bytes are needed, -1 on a protocol error (line too
 * long, literal larger than max_literal, too many literals).
 */
ssize_t imap_frame(struct imap_framer *f, const char *buf, size_t len, uint64_t max_literal);

enum imap_rtype {
    IMAP_R_TAGGED = 0,
    IMAP_R_UNTAGGED,
    IMAP_R_CONTINUE,    /* "+ text" */
};

enum imap_status {
    IMAP_ST_NONE = 0,   /* untagged data (EXISTS, FETCH, ...) */
    IMAP_ST_OK,
    IMAP_ST_NO,
    IMAP_ST_BAD,
    IMAP_ST_PREAUTH,
    IMAP_ST_BYE,
};

enum imap_data {
    IMAP_D_NONE = 0,
    IMAP_D_CAPABILITY,
    IMAP_D_EXISTS,
    IMAP_D_EXPUNGE,
    IMAP_D_RECENT,
    IMAP_D_FETCH,
    IMAP_D_FLAGS,
    IMAP_D_SEARCH,
    IMAP_D_OTHER,
};

enum imap_code {
    IMAP_C_NONE = 0,
    IMAP_C_UIDVALIDITY,
    IMAP_C_UIDNEXT,
    IMAP_C_CAPABILITY,
    IMAP_C_ALERT,
    IMAP_C_TRYCREATE,
    IMAP_C_AUTHFAILED,  /* AUTHENTICATIONFAILED (RFC 5530) */
    IMAP_C_UNAVAILABLE,
    IMAP_C_OTHER,
};

/* Capabilities we act on. */
#define IMAP_CAP_IMAP4REV1 0x001u
#define IMAP_CAP_IDLE 0x002u
#define IMAP_CAP_MOVE 0x004u
#define IMAP_CAP_UIDPLUS 0x008u
#define IMAP_CAP_STARTTLS 0x010u
#define IMAP_CAP_LOGINDISABLED 0x020u
#define IMAP_CAP_AUTH_PLAIN 0x040u
#define IMAP_CAP_AUTH_XOAUTH2 0x080u
#define IMAP_CAP_SASL_IR 0x100u
#define IMAP_CAP_LITERALPLUS 0x200u

/* One parsed response. Pointers point into the framed buffer. */
struct imap_resp {
    enum imap_rtype type;
    char tag[IMAP_TAG_MAX + 1];
    enum imap_status status;
    enum imap_data data;
    uint32_t number;            /* EXISTS/EXPUNGE/RECENT count, FETCH sequence */
    enum imap_code code;
    uint64_t code_num;          /* UIDVALIDITY, UIDNEXT */
    unsigned caps;              /* CAPABILITY data or [CAPABILITY ...] code */
    int has_caps;
    char text[IMAP_TEXT_MAX];   /* human-readable text (sanitized, truncated) */

    /* FETCH attributes. */
    uint32_t uid;
    int has_uid;
    uint64_t size;
    int has_size;
    const char *body;           /* BODY[] or BODY[HEADER] contents */
    size_t body_len;
    int has_body;
    int seen;                   /* FLAGS contain \Seen */

    /* Continuation: the text after "+ " (base64 challenge). */
    const char *cont;
    size_t cont_len;
};

/*
 * Parse one framed response (as returned by imap_frame). Returns 0 and
 * fills r, or -1 when the response is malformed. Unknown untagged data
 * parses as IMAP_D_OTHER so that servers may say more than we need.
 */
int imap_parse(const char *buf, size_t len, struct imap_resp *r);

/*
 * Append `s` as an IMAP quoted string ("..." with \ and " escaped) to
 * out (NUL-terminated). Returns the new length, or -1 when s holds a
 * byte that cannot be quoted (CR, LF, NUL, 8-bit) or out is too small.
 */
ssize_t imap_quote(const char *s, char *out, size_t cap, size_t used);

/*
 * SASL XOAUTH2 initial response: base64 of "user=U^Aauth=Bearer T^A^A"
 * (Google and Microsoft). Returns the length written into out, or -1.
 */
ssize_t imap_xoauth2(const char *user, const char *token, char *out, size_t cap);

/* SASL PLAIN initial response: base64 of "\0user\0pass". Length or -1. */
ssize_t imap_sasl_plain(const char *user, const char *pass, char *out, size_t cap);

/* What an imap:// or imaps:// URL names. */
struct imap_url {
    int tls;                    /* imaps: TLS from the first byte */
    char host[256];
    uint16_t port;
    char mailbox[256];          /* decoded; "INBOX" when the path is empty */
};

/* Parse url; 0, or -1 with a sentence in why. */
int imap_url_parse(const char *url, struct imap_url *out, char *why, size_t why_len);

enum imap_after {
    IMAP_AFTER_KEEP = 0,
    IMAP_AFTER_SEEN,
    IMAP_AFTER_MOVE,
};

/* Parse after_ingest ("keep", "seen", "move:FOLDER"); folder copied to folder. 0 or -1. */
int imap_after_parse(const char *text, enum imap_after *out, char *folder, size_t cap);

/*
 * Reconnect delay for the given attempt (0-based): 1 s doubling up to
 * 5 min, then jittered down to between half and all of it by `rnd`
 * (any 32-bit random value). Milliseconds.
 */
int64_t imap_backoff_ms(unsigned attempt, uint32_t rnd);

/* Whether a mailbox name can be sent (non-empty, no CR/LF/NUL, bounded). */
int imap_mailbox_ok(const char *name);

#endif
