"""Send Twilio webhooks signed by the official library (python3-twilio)."""
import urllib.error
import urllib.parse
import urllib.request

from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://hooks.example.test"


def post(harkd, path, params, token, sign_url=None, signature=None, timeout=10):
    """POST form params to harkd; returns (status, body, headers)."""
    url = (sign_url or PUBLIC_URL) + path
    sig = signature if signature is not None else RequestValidator(token).compute_signature(url, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sig:
        headers["X-Twilio-Signature"] = sig
    data = urllib.parse.urlencode(params, doseq=True).encode()
    req = urllib.request.Request(harkd.url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def sms(sid, frm="+34612345678", to="+15557654321", body="Hola", **extra):
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "1" * 32, "From": frm,
              "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    params.update(extra)
    return params
