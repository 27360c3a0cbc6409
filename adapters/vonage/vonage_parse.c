/*
 * Vonage SMS adapter: request parameters, the signed input, and the pure
 * translation of inbound SMS and delivery receipts into normalized
 * messages. No I/O and no globals, so that it can be fuzzed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include "hark/alloc.h"
#include "hark/codec.h"
#include "hark/crypto.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "vonage.h"

void vonage_params_free(struct vonage_params *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        hark_free(ps->v[i].name);
        hark_free(ps->v[i].value);
    }
    ps->n = 0;
}

const char *vonage_params_get(const struct vonage_params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].name, name) == 0) {
            return ps->v[i].value;
        }
    }
    return NULL;
}

/*
 * Append a copy of (name, value[0..len)) to ps after checking the bounds:
 * a non-empty name, no duplicates, valid UTF-8, bounded sizes and count.
 * Returns 0 or a VONAGE_* code with *why set.
 */
static int params_add(struct vonage_params *ps, const char *name, const char *value,
                      size_t len, const char **why)
{
    struct vonage_param *p;

    if (name[0] == '\0' || strlen(name) > 64) {
        *why = "empty or overlong parameter name";
        return VONAGE_BAD_INPUT;
    }
    if (ps->n == VONAGE_MAX_PARAMS) {
        *why = "too many parameters";
        return VONAGE_BAD_INPUT;
    }
    if (len > VONAGE_MAX_VALUE || memchr(value, '\0', len) != NULL) {
        *why = "parameter value too long or not text";
        return VONAGE_BAD_INPUT;
    }
    if (!hark_utf8_valid(name, strlen(name)) || !hark_utf8_valid(value, len)) {
        *why = "parameter is not valid UTF-8";
        return VONAGE_BAD_INPUT;
    }
    if (vonage_params_get(ps, name) != NULL) {
        *why = "duplicate parameter";
        return VONAGE_BAD_INPUT;
    }
    p = &ps->v[ps->n];
    p->name = hark_strdup(name);
    p->value = hark_strndup(value, len);
    if (p->name == NULL || p->value == NULL) {
        hark_free(p->name);
        hark_free(p->value);
        p->name = p->value = NULL;
        *why = "out of memory";
        return VONAGE_NO_MEMORY;
    }
    ps->n++;
    return 0;
}

/* Add every pair of a query string or form body. 0 or a VONAGE_* code. */
static int collect_form(struct vonage_params *ps, const char *text, size_t len,
                        const char **why)
{
    struct hark_form form;
    int rc = 0;

    if (hark_form_parse(text, len, &form, why) < 0) {
        rc = strcmp(*why, "out of memory") == 0 ? VONAGE_NO_MEMORY : VONAGE_BAD_INPUT;
    }
    for (size_t i = 0; rc == 0 && i < form.n; i++) {
        rc = params_add(ps, form.pairs[i].name, form.pairs[i].value,
                        strlen(form.pairs[i].value), why);
    }
    hark_form_free(&form);
    return rc;
}

/*
 * Add the top-level members of a JSON object: strings as they are,
 * integers in decimal (Vonage signs them that way). Anything else is a
 * wrong type. 0 or a VONAGE_* code.
 */
static int collect_json(struct vonage_params *ps, const char *body, size_t len,
                        const char **why)
{
    json_t *root = hark_json_parse(body, len, why);
    const char *key;
    json_t *v;
    int rc = 0;

    if (root == NULL) {
        return VONAGE_BAD_INPUT;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *why = "JSON body is not an object";
        return VONAGE_BAD_INPUT;
    }
    json_object_foreach(root, key, v) {
        char num[32];
        if (json_is_string(v)) {
            rc = params_add(ps, key, json_string_value(v), json_string_length(v), why);
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            rc = params_add(ps, key, num, strlen(num), why);
        } else {
            *why = "JSON parameter is not a string or an integer";
            rc = VONAGE_BAD_INPUT;
        }
        if (rc != 0) {
            break;
        }
    }
    json_decref(root);
    return rc;
}

int vonage_params_collect(const struct hark_request *req, struct vonage_params *ps,
                          const char **why)
{
    const char *ctype;
    int rc;

    ps->n = 0;
    if (req->query != NULL && req->query[0] != '\0') {
        rc = collect_form(ps, req->query, strlen(req->query), why);
        if (rc != 0) {
            return rc;
        }
    }
    if (req->method == NULL || strcmp(req->method, "POST") != 0 || req->body_len == 0) {
        return 0;
    }
    ctype = req->header ? req->header(req, "Content-Type") : NULL;
    if (ctype != NULL && strcasestr(ctype, "application/json") != NULL) {
        return collect_json(ps, (const char *)req->body, req->body_len, why);
    }
    if (ctype == NULL || strcasestr(ctype, "application/x-www-form-urlencoded") != NULL) {
        return collect_form(ps, (const char *)req->body, req->body_len, why);
    }
    *why = "unsupported content type";
    return VONAGE_BAD_MEDIA;
}

/* qsort comparator over parameter pointers: by name, bytewise. */
static int param_cmp(const void *a, const void *b)
{
    const struct vonage_param *pa = *(const struct vonage_param *const *)a;
    const struct vonage_param *pb = *(const struct vonage_param *const *)b;
    return strcmp(pa->name, pb->name);
}

char *vonage_signed_input(const struct vonage_params *ps)
{
    const struct vonage_param *sorted[VONAGE_MAX_PARAMS];
    size_t n = 0, len = 1, at = 0;
    char *out;

    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].name, "sig") != 0) {
            sorted[n++] = &ps->v[i];
            len += 2 + strlen(ps->v[i].name) + strlen(ps->v[i].value);
        }
    }
    if (n > 1) {
        qsort(sorted, n, sizeof(sorted[0]), param_cmp);
    }
    out = hark_malloc(len);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(sorted[i]->name);
        out[at++] = '&';
        memcpy(out + at, sorted[i]->name, nl);
        at += nl;
        out[at++] = '=';
        for (const char *c = sorted[i]->value; *c; c++) {
            out[at++] = (*c == '&' || *c == '=') ? '_' : *c;
        }
    }
    out[at] = '\0';
    return out;
}

int vonage_sig_check(const struct vonage_params *ps, enum vonage_sig_method method,
                     const char *secret, size_t secret_len, const char *sig)
{
    static const enum hark_digest algs[] = {
        [VONAGE_SIG_MD5HASH] = HARK_MD5,
        [VONAGE_SIG_HMAC_MD5] = HARK_MD5,
        [VONAGE_SIG_HMAC_SHA1] = HARK_SHA1,
        [VONAGE_SIG_HMAC_SHA256] = HARK_SHA256,
        [VONAGE_SIG_HMAC_SHA512] = HARK_SHA512,
    };
    unsigned char digest[HARK_DIGEST_MAX];
    char hex[2 * HARK_DIGEST_MAX + 1];
    char *input = vonage_signed_input(ps);
    int size, ok;

    if (input == NULL) {
        return -1;
    }
    if (method == VONAGE_SIG_MD5HASH) {
        struct iovec parts[2] = {
            {input, strlen(input)},
            {(void *)secret, secret_len},
        };
        size = hark_digest_iov(HARK_MD5, parts, 2, digest);
    } else {
        size = hark_hmac(algs[method], secret, secret_len, input, strlen(input), digest);
    }
    hark_free(input);
    if (size < 0 || hark_hex_encode(digest, (size_t)size, hex, sizeof(hex)) < 0) {
        return -1;
    }
    ok = hark_ct_equal_nocase(hex, strlen(hex), sig, strlen(sig));
    return ok ? 1 : 0;
}

int vonage_sig_method_parse(const char *name, enum vonage_sig_method *out)
{
    static const struct {
        const char *name;
        enum vonage_sig_method method;
    } names[] = {
        {"md5hash", VONAGE_SIG_MD5HASH}, {"md5", VONAGE_SIG_HMAC_MD5},
        {"sha1", VONAGE_SIG_HMAC_SHA1},  {"sha256", VONAGE_SIG_HMAC_SHA256},
        {"sha512", VONAGE_SIG_HMAC_SHA512},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].method;
            return 0;
        }
    }
    return -1;
}

/* Read exactly n decimal digits at s into *out; 0 or -1. */
static int read_digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to the given proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int vonage_parse_unix(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (s == NULL || s[0] == '\0' || strlen(s) > 12) {
        return -1;
    }
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 0;
}

int vonage_parse_datetime(const char *s, int64_t *out_ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    int leap;

    if (strlen(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':') {
        return -1;
    }
    if (read_digits(s, 4, &y) < 0 || read_digits(s + 5, 2, &mo) < 0 ||
        read_digits(s + 8, 2, &d) < 0 || read_digits(s + 11, 2, &h) < 0 ||
        read_digits(s + 14, 2, &mi) < 0 || read_digits(s + 17, 2, &sec) < 0) {
        return -1;
    }
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    *out_ms = ((days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + sec) * 1000;
    return 0;
}

/* Parse a decimal in [min, max]; -1 when s is not one. */
static int small_int(const char *s, int min, int max)
{
    int v = 0;

    if (s == NULL || s[0] == '\0' || strlen(s) > 6) {
        return -1;
    }
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
        v = v * 10 + (*c - '0');
    }
    return v >= min && v <= max ? v : -1;
}

/* 1 when s is a non-empty identifier of at most max printable ASCII bytes. */
static int printable_id(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    for (; s[n]; n++) {
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || n == max) {
            return 0;
        }
    }
    return 1;
}

/* 1 when s holds an ASCII control character. */
static int has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/*
 * Fields both kinds share: messageId, the customer (msisdn, E.164, the
 * routing identity), our number (to, E.164 when it is one, else the
 * alphanumeric sender as given), thread_key "<customer>|<ours>", and
 * sent_at from message-timestamp (or the unix timestamp). 0, -1 for bad
 * input (why set) or -2 for no memory.
 */
static int fill_common(const struct vonage_params *ps, struct hark_msg *msg, const char **why)
{
    const char *id = vonage_params_get(ps, "messageId");
    const char *msisdn = vonage_params_get(ps, "msisdn");
    const char *to = vonage_params_get(ps, "to");
    const char *when = vonage_params_get(ps, "message-timestamp");
    char customer[20], ours[40];
    char *key;

    if (!printable_id(id, 64)) {
        *why = "missing or malformed messageId";
        return -1;
    }
    if (msisdn == NULL || hark_phone_e164(msisdn, customer, sizeof(customer)) < 0) {
        *why = "missing msisdn, or it is not a phone number";
        return -1;
    }
    /* Our number, or an alphanumeric sender id such as "Nexmo CLI". */
    if (to == NULL || to[0] == '\0' || strlen(to) > 32 || has_control(to)) {
        *why = "missing or malformed to";
        return -1;
    }
    if (hark_phone_e164(to, ours, sizeof(ours)) < 0) {
        snprintf(ours, sizeof(ours), "%s", to);
    }
    if (when != NULL && vonage_parse_datetime(when, &msg->sent_at) < 0) {
        *why = "malformed message-timestamp";
        return -1;
    }
    if (when == NULL && vonage_parse_unix(vonage_params_get(ps, "timestamp"), &msg->sent_at) == 0) {
        msg->sent_at *= 1000;
    }
    key = hark_asprintf("%s|%s", customer, ours);
    if (key == NULL || hark_strset(&msg->provider_message_id, id) < 0 ||
        hark_msg_add_ident(msg, "phone", customer) < 0) {
        hark_free(key);
        return -2;
    }
    msg->thread_key = key;
    if (msg->kind == HARK_KIND_STATUS) {
        /* A receipt is about our message: the customer is its recipient. */
        if (hark_strset(&msg->to.id, customer) < 0 || hark_strset(&msg->from.id, ours) < 0) {
            return -2;
        }
    } else if (hark_strset(&msg->from.id, customer) < 0 || hark_strset(&msg->to.id, ours) < 0) {
        return -2;
    }
    return 0;
}

/* Copy the named parameters that are present into msg->extra. 0 or -2. */
static int keep_extra(const struct vonage_params *ps, struct hark_msg *msg,
                      const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        const char *v = vonage_params_get(ps, names[i]);
        if (v != NULL && hark_msg_extra_set(msg, names[i], json_string(v)) < 0) {
            return -2;
        }
    }
    return 0;
}

/*
 * A concatenated part: concat-ref scoped by the sender (Vonage's ref is a
 * per-sender counter), so concat_ref = "<msisdn digits>:<concat-ref>" and
 * the whole message's provider id is "concat:" + concat_ref. 0, -1, -2.
 */
static int fill_concat(const struct vonage_params *ps, struct hark_msg *msg, const char **why)
{
    const char *ref = vonage_params_get(ps, "concat-ref");
    int total = small_int(vonage_params_get(ps, "concat-total"), 1, 255);
    int part = small_int(vonage_params_get(ps, "concat-part"), 1, 255);
    char *whole;

    if (!printable_id(ref, 16) || total < 0 || part < 0 || part > total) {
        *why = "malformed concat-ref, concat-total or concat-part";
        return -1;
    }
    msg->concat_total = total;
    msg->concat_part = part;
    /* idents[0] is "+<digits>": the ref carries the digits only. */
    msg->concat_ref = hark_asprintf("%s:%s", msg->idents[0].value + 1, ref);
    if (msg->concat_ref == NULL) {
        return -2;
    }
    whole = hark_asprintf("concat:%s", msg->concat_ref);
    if (whole == NULL) {
        return -2;
    }
    if (hark_msg_extra_set(msg, "concat_message_id", json_string(whole)) < 0) {
        hark_free(whole);
        return -2;
    }
    hark_free(whole);
    return 0;
}

/* An inbound SMS: text (text, unicode) or hex data (binary). 0, -1, -2. */
static int fill_inbound(const struct vonage_params *ps, struct hark_msg *msg, const char **why)
{
    static const char *const kept[] = {"type", "keyword", "data", "udh", "api-key", NULL};
    const char *type = vonage_params_get(ps, "type");
    const char *text = vonage_params_get(ps, "text");
    const char *concat = vonage_params_get(ps, "concat");
    int rc = fill_common(ps, msg, why);

    if (rc != 0) {
        return rc;
    }
    if (type != NULL && strcmp(type, "binary") == 0) {
        const char *data = vonage_params_get(ps, "data");
        if (data == NULL || strspn(data, "0123456789abcdefABCDEF") != strlen(data)) {
            *why = "binary SMS without hex data";
            return -1;
        }
    } else if (text == NULL) {
        *why = "inbound SMS without text";
        return -1;
    } else if (hark_strset(&msg->text, text) < 0) {
        return -2;
    }
    if (keep_extra(ps, msg, kept) < 0) {
        return -2;
    }
    if (concat != NULL && strcmp(concat, "true") == 0) {
        return fill_concat(ps, msg, why);
    }
    return 0;
}

/* Delivery receipt error codes as Vonage documents them. */
static const char *dlr_error_text(int code)
{
    static const char *const texts[] = {
        "Delivered", "Unknown", "Absent Subscriber - Temporary",
        "Absent Subscriber - Permanent", "Call Barred by User", "Portability Error",
        "Anti-Spam Rejection", "Handset Busy", "Network Error", "Illegal Number",
        "Illegal Message", "Unroutable", "Destination Unreachable",
        "Subscriber Age Restriction", "Number Blocked by Carrier",
        "Prepaid Insufficient Funds",
    };

    if (code >= 0 && (size_t)code < sizeof(texts) / sizeof(texts[0])) {
        return texts[code];
    }
    switch (code) {
    case 50: return "Entity Filter";
    case 51: return "Header Filter";
    case 52: return "Content Filter";
    case 53: return "Consent Filter";
    case 54: return "Regulation Error";
    case 99: return "General Error";
    default: return "Unlisted error";
    }
}

/* Map a DLR status to ours: "delivered", "failed", "sent"; NULL when unknown. */
static const char *dlr_status(const char *s)
{
    if (strcmp(s, "delivered") == 0) {
        return "delivered";
    }
    if (strcmp(s, "expired") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "rejected") == 0) {
        return "failed";
    }
    if (strcmp(s, "accepted") == 0 || strcmp(s, "buffered") == 0 ||
        strcmp(s, "unknown") == 0) {
        return "sent";
    }
    return NULL;
}

/* A delivery receipt for one of our messages. 0, -1, -2. */
static int fill_dlr(const struct vonage_params *ps, struct hark_msg *msg, const char **why)
{
    static const char *const kept[] = {"err-code", "client-ref", "network-code", "price",
                                       "scts", "api-key", NULL};
    const char *raw = vonage_params_get(ps, "status");
    const char *code_text = vonage_params_get(ps, "err-code");
    int code = small_int(code_text, 0, 9999);
    int rc;

    msg->direction = HARK_DIR_OUTBOUND;
    msg->status = dlr_status(raw);
    if (msg->status == NULL) {
        *why = "unknown delivery receipt status";
        return -1;
    }
    if (code_text != NULL && code < 0) {
        *why = "malformed err-code";
        return -1;
    }
    rc = fill_common(ps, msg, why);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(msg->status, "failed") == 0) {
        msg->error = code >= 0 ? hark_asprintf("%s: %s (err-code %d)", raw,
                                               dlr_error_text(code), code)
                               : hark_strdup(raw);
        if (msg->error == NULL) {
            return -2;
        }
    }
    if (hark_msg_extra_set(msg, "vonage_status", json_string(raw)) < 0 ||
        keep_extra(ps, msg, kept) < 0) {
        return -2;
    }
    return 0;
}

/*
 * The parse step: the request's parameters become one inbound SMS or one
 * status record in out (a receipt has status and messageId but no text or
 * data). Answers 200 with an empty body; 400/415 for malformed requests and
 * 503 when memory runs out, with nothing produced.
 */
int vonage_parse(const struct hark_channel *ch, const struct hark_request *req,
                 struct hark_batch *out, struct hark_response *resp)
{
    struct vonage_params ps;
    struct hark_msg *msg = NULL;
    const char *why = NULL, *bad;
    int is_dlr, rc;

    rc = vonage_params_collect(req, &ps, &why);
    if (rc != 0) {
        vonage_params_free(&ps);
        return hark_response_fail(resp, rc == VONAGE_NO_MEMORY ? 503
                                        : rc == VONAGE_BAD_MEDIA ? 415 : 400,
                                  "vonage: %s", why);
    }
    is_dlr = vonage_params_get(&ps, "status") != NULL &&
             vonage_params_get(&ps, "messageId") != NULL &&
             vonage_params_get(&ps, "text") == NULL && vonage_params_get(&ps, "data") == NULL;
    msg = hark_msg_new(is_dlr ? HARK_KIND_STATUS : HARK_KIND_MESSAGE, "sms", "vonage", ch->name);
    if (msg == NULL) {
        rc = -2;
    } else {
        rc = is_dlr ? fill_dlr(&ps, msg, &why) : fill_inbound(&ps, msg, &why);
    }
    vonage_params_free(&ps);
    if (rc == 0 && (bad = hark_msg_validate(msg)) != NULL) {
        why = bad;
        rc = -1;
    }
    if (rc != 0) {
        hark_msg_free(msg);
        return rc == -2 ? hark_response_fail(resp, 503, "vonage: out of memory")
                        : hark_response_fail(resp, 400, "vonage: %s", why);
    }
    if (hark_batch_push(out, msg) < 0) {
        return hark_response_fail(resp, 503, "vonage: out of memory");
    }
    hark_response_set(resp, 200, "text/plain; charset=utf-8", NULL);
    return 0;
}
