/*
 * Adapter responses and provider call descriptions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hark/alloc.h"
#include "hark/channel.h"

int hark_response_set(struct hark_response *resp, int status,
                      const char *content_type, const char *body)
{
    char *copy = NULL;

    if (body != NULL && (copy = hark_strdup(body)) == NULL) {
        return -1;
    }
    hark_free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = copy;
    resp->body_len = copy ? strlen(copy) : 0;
    return 0;
}

int hark_response_fail(struct hark_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(resp->reason, sizeof(resp->reason), fmt, ap);
    va_end(ap);
    len = strlen(resp->reason);
    hark_free(resp->body);
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = hark_malloc(len + 2);
    resp->body_len = 0;
    if (resp->body != NULL) {
        memcpy(resp->body, resp->reason, len);
        resp->body[len] = '\n';
        resp->body[len + 1] = '\0';
        resp->body_len = len + 1;
    }
    return -1;
}

void hark_response_clear(struct hark_response *resp)
{
    hark_free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

void hark_http_call_clear(struct hark_http_call *call)
{
    hark_free(call->url);
    for (size_t i = 0; i < call->n_headers; i++) {
        hark_free(call->headers[i]);
    }
    hark_free(call->body);
    hark_free(call->userpwd);
    hark_free(call->bearer);
    hark_free(call->mail_from);
    hark_free(call->rcpt_to);
    hark_free(call->ca_file);
    memset(call, 0, sizeof(*call));
}
