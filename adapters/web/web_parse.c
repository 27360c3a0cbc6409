/*
 * Signed web form / chat widget adapter: the pure translation of one JSON
 * submission into a normalized message. No I/O and no globals.
 *
 * {"id": "...", "text": "...", "email": "...", "phone": "...", "name": "...",
 *  "subject": "...", "page_url": "...", "conversation": "...",
 *  "attachments": [{"url", "content_type", "filename", "size"}]}
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "hark/alloc.h"
#include "hark/msg.h"
#include "hark/text.h"

#include "web.h"

/* What went wrong, for the 400 body: "<field> <problem>". */
struct web_error {
    const char *field;
    const char *problem;
};

/*
 * The string member key of obj into *out (NULL when absent or null).
 * Checks the type and the length bound; when `token` is set the value must
 * also be free of spaces and control characters. 0, or -1 with e filled.
 */
static int get_str(const json_t *obj, const char *key, size_t max, int required, int token,
                   const char **out, struct web_error *e)
{
    const json_t *v = json_object_get(obj, key);
    const char *s;
    size_t n;

    *out = NULL;
    e->field = key;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            e->problem = "is required";
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        e->problem = "must be a string";
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > max) {
        e->problem = "is too long";
        return -1;
    }
    if (required && n == 0) {
        e->problem = "must not be empty";
        return -1;
    }
    for (size_t i = 0; token && i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) {
            e->problem = "must not contain spaces or control characters";
            return -1;
        }
    }
    *out = s;
    return 0;
}

/*
 * Lowercase an email address into a new string after a shape check: one
 * '@' with text on both sides and no spaces, control characters or
 * address-list punctuation. NULL when malformed or out of memory (*oom set).
 */
static char *email_norm(const char *in, int *oom)
{
    const char *at = strchr(in, '@');
    char *out;

    *oom = 0;
    if (at == NULL || at == in || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
        return NULL;
    }
    for (const char *c = in; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '<' || *c == '>' || *c == ',') {
            return NULL;
        }
    }
    if ((out = hark_strdup(in)) == NULL) {
        *oom = 1;
        return NULL;
    }
    for (char *c = out; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return out;
}

/* 1 when url is an http(s) URL. */
static int http_url(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0;
}

/* Add the attachments array (absent or null: none). 0, -1 (e filled), -2. */
static int add_attachments(const json_t *root, struct hark_msg *msg, struct web_error *e)
{
    const json_t *list = json_object_get(root, "attachments");
    const json_t *a;
    size_t i;

    e->field = "attachments";
    if (list == NULL || json_is_null(list)) {
        return 0;
    }
    if (!json_is_array(list)) {
        e->problem = "must be an array";
        return -1;
    }
    if (json_array_size(list) > WEB_MAX_ATTACHMENTS) {
        e->problem = "has too many entries (at most 16)";
        return -1;
    }
    json_array_foreach(list, i, a) {
        const char *url, *ctype, *name;
        const json_t *size = json_object_get(a, "size");
        int64_t bytes = -1;

        if (!json_is_object(a)) {
            e->field = "attachments";
            e->problem = "entries must be objects";
            return -1;
        }
        if (get_str(a, "url", WEB_MAX_URL, 1, 1, &url, e) < 0 ||
            get_str(a, "content_type", WEB_MAX_SHORT, 0, 1, &ctype, e) < 0 ||
            get_str(a, "filename", WEB_MAX_SHORT, 0, 0, &name, e) < 0) {
            return -1;
        }
        if (!http_url(url)) {
            e->field = "url";
            e->problem = "must be an http(s) URL";
            return -1;
        }
        if (size != NULL && !json_is_null(size)) {
            if (!json_is_integer(size) || json_integer_value(size) < 0) {
                e->field = "size";
                e->problem = "must be a non-negative integer";
                return -1;
            }
            bytes = json_integer_value(size);
        }
        if (hark_msg_add_attachment(msg, url, ctype, name, bytes, NULL) < 0) {
            return -2;
        }
    }
    return 0;
}

/* The customer's identities: email (lowercased) first, then phone. 0, -1, -2. */
static int add_identities(const char *email, const char *phone, struct hark_msg *msg,
                          struct web_error *e)
{
    char e164[20];
    char *addr = NULL;
    int oom = 0, rc = 0;

    if (email == NULL && phone == NULL) {
        e->field = "email or phone";
        e->problem = "is required (the customer's identity)";
        return -1;
    }
    if (email != NULL && (addr = email_norm(email, &oom)) == NULL) {
        e->field = "email";
        e->problem = "is not an email address";
        return oom ? -2 : -1;
    }
    if (phone != NULL && hark_phone_e164(phone, e164, sizeof(e164)) < 0) {
        hark_free(addr);
        e->field = "phone";
        e->problem = "is not a phone number";
        return -1;
    }
    if ((addr != NULL && hark_msg_add_ident(msg, "email", addr) < 0) ||
        (phone != NULL && hark_msg_add_ident(msg, "phone", e164) < 0)) {
        rc = -2;
    }
    hark_free(addr);
    return rc;
}

/*
 * Fill msg from the submission root. 0, -1 (bad input, e filled) or -2
 * (no memory).
 */
static int fill_msg(const json_t *root, const struct hark_request *req, struct hark_msg *msg,
                    struct web_error *e)
{
    const char *id, *text, *email, *phone, *name, *subject, *page, *conv;
    int64_t secs;
    int rc;

    if (get_str(root, "id", WEB_MAX_ID, 1, 1, &id, e) < 0 ||
        get_str(root, "text", WEB_MAX_TEXT, 1, 0, &text, e) < 0 ||
        get_str(root, "email", WEB_MAX_EMAIL, 0, 1, &email, e) < 0 ||
        get_str(root, "phone", 32, 0, 0, &phone, e) < 0 ||
        get_str(root, "name", WEB_MAX_NAME, 0, 0, &name, e) < 0 ||
        get_str(root, "subject", WEB_MAX_SUBJECT, 0, 0, &subject, e) < 0 ||
        get_str(root, "page_url", WEB_MAX_URL, 0, 1, &page, e) < 0 ||
        get_str(root, "conversation", WEB_MAX_ID, 0, 1, &conv, e) < 0) {
        return -1;
    }
    if ((rc = add_identities(email, phone, msg, e)) != 0 ||
        (rc = add_attachments(root, msg, e)) != 0) {
        return rc;
    }
    if (conv != NULL && conv[0] == '\0') {
        conv = NULL;
    }
    if (hark_strset(&msg->provider_message_id, id) < 0 || hark_strset(&msg->text, text) < 0 ||
        hark_strset(&msg->subject, subject) < 0 ||
        hark_strset(&msg->from.id, msg->idents[0].value) < 0 ||
        hark_strset(&msg->from.name, name) < 0 ||
        hark_strset(&msg->thread_key, conv ? conv : msg->idents[0].value) < 0 ||
        (page != NULL && hark_msg_extra_set(msg, "page_url", json_string(page)) < 0) ||
        (conv != NULL && hark_msg_thread_set(msg, "conversation", conv) < 0)) {
        return -2;
    }
    if (web_request_timestamp(req, &secs) == 0) {
        msg->sent_at = secs * 1000;
    }
    return 0;
}

int web_parse(const struct hark_channel *ch, const struct hark_request *req,
              struct hark_batch *out, struct hark_response *resp)
{
    struct web_error e = {"body", "is not valid"};
    const char *why = NULL, *bad;
    struct hark_msg *msg;
    json_t *root;
    int rc;

    root = hark_json_parse((const char *)req->body, req->body_len, &why);
    if (root == NULL) {
        return hark_response_fail(resp, 400, "web: %s", why);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return hark_response_fail(resp, 400, "web: body must be a JSON object");
    }
    msg = hark_msg_new(HARK_KIND_MESSAGE, "web", "generic", ch->name);
    rc = msg ? fill_msg(root, req, msg, &e) : -2;
    json_decref(root);
    if (rc == 0 && (bad = hark_msg_validate(msg)) != NULL) {
        hark_msg_free(msg);
        return hark_response_fail(resp, 400, "web: %s", bad);
    }
    if (rc != 0) {
        hark_msg_free(msg);
        return rc == -2 ? hark_response_fail(resp, 503, "web: out of memory")
                        : hark_response_fail(resp, 400, "web: %s %s", e.field, e.problem);
    }
    if (hark_response_set(resp, 200, "application/json", "{\"ok\":true}") < 0) {
        hark_msg_free(msg);
        return hark_response_fail(resp, 503, "web: out of memory");
    }
    if (hark_batch_push(out, msg) < 0) {
        return hark_response_fail(resp, 503, "web: out of memory");
    }
    return 0;
}
