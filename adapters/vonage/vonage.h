/*
 * Vonage SMS adapter: private interfaces shared by vonage.c (ops table,
 * config, verify), vonage_parse.c (pure request parsing) and
 * vonage_send.c (SMS API requests and answers). See docs/adapters/vonage.md.
 */
#ifndef HARK_ADAPTER_VONAGE_H
#define HARK_ADAPTER_VONAGE_H

#include <stddef.h>
#include <stdint.h>

#include "hark/channel.h"
#include "hark/conf.h"
#include "hark/crypto.h"

/* How Vonage signs webhooks (signature_method). */
enum vonage_sig_method {
    VONAGE_SIG_MD5HASH = 0,     /* MD5(input + secret) */
    VONAGE_SIG_HMAC_MD5,
    VONAGE_SIG_HMAC_SHA1,
    VONAGE_SIG_HMAC_SHA256,
    VONAGE_SIG_HMAC_SHA512,
};

/* Per-instance state, built by init from the channel section. */
struct vonage_ctx {
    const struct hark_secret *sig_secret;   /* signature_secret */
    enum vonage_sig_method method;
    const char *api_key;                    /* borrowed from the section, may be NULL */
    const struct hark_secret *api_secret;   /* may be NULL */
    char *api_url;                          /* owned, no trailing slash */
    int64_t max_skew_ms;
};

/* Bounds on what a request may carry (Vonage sends about 15 parameters). */
#define VONAGE_MAX_PARAMS 64
#define VONAGE_MAX_VALUE 8192

/* One request parameter, decoded (the form Vonage signs). */
struct vonage_param {
    char *name;
    char *value;
};

/* Every parameter of a request: query string plus form body or JSON scalars. */
struct vonage_params {
    struct vonage_param v[VONAGE_MAX_PARAMS];
    size_t n;
};

/* Results of vonage_params_collect besides 0. */
#define VONAGE_BAD_INPUT (-1)
#define VONAGE_NO_MEMORY (-2)
#define VONAGE_BAD_MEDIA (-3)   /* a body that is neither form nor JSON */

/*
 * Gather the parameters of req: the query string, then for POST the
 * form-encoded body or the top-level scalars of a JSON object (strings as
 * they are, integers in decimal). Names must be unique. Returns 0, or one
 * of the VONAGE_* codes above with *why set to a static sentence. ps must
 * be released with vonage_params_free() in every case.
 */
int vonage_params_collect(const struct hark_request *req, struct vonage_params *ps,
                          const char **why);
void vonage_params_free(struct vonage_params *ps);

/* The value of parameter name, or NULL. */
const char *vonage_params_get(const struct vonage_params *ps, const char *name);

/*
 * The exact bytes Vonage signs: every parameter but "sig", sorted by name,
 * as "&name=value" with '&' and '=' in values replaced by '_'. Returns a
 * new string (hark_free) or NULL on allocation failure.
 */
char *vonage_signed_input(const struct vonage_params *ps);

/*
 * Check sig (hex, any case) against the signed input of ps with secret.
 * Returns 1 when it matches, 0 when not, -1 on allocation failure.
 */
int vonage_sig_check(const struct vonage_params *ps, enum vonage_sig_method method,
                     const char *secret, size_t secret_len, const char *sig);

/* Parse a signature_method name; 0 or -1. */
int vonage_sig_method_parse(const char *name, enum vonage_sig_method *out);

/* Unix seconds: 1 to 12 decimal digits, nothing else. 0 or -1. */
int vonage_parse_unix(const char *s, int64_t *out);

/*
 * "YYYY-MM-DD HH:MM:SS" (UTC) to epoch milliseconds; 0 or -1 when the
 * text is not exactly that shape or not a real date.
 */
int vonage_parse_datetime(const char *s, int64_t *out_ms);

/* The operations table (vonage.c), for the registry. */
extern const struct hark_adapter hark_adapter_vonage;

/* The adapter operations implemented outside vonage.c. */
int vonage_parse(const struct hark_channel *ch, const struct hark_request *req,
                 struct hark_batch *out, struct hark_response *resp);
int vonage_build_send(const struct hark_channel *ch, const struct hark_outbound *ob,
                      struct hark_http_call *call, char *err, size_t err_len);
enum hark_send_outcome vonage_read_send(const struct hark_channel *ch, long http_status,
                                        const char *body, size_t body_len,
                                        char **provider_message_id, char *err,
                                        size_t err_len);

#endif
