#!/usr/bin/python3
"""Print a ready-to-paste curl that sends a Twilio-signed test SMS to harkd.

Usage: signed-sms-curl.py BASE_URL PATH AUTH_TOKEN
The signature is computed with the official Twilio library when installed
(python3-twilio), else with the same documented algorithm inline.
"""
import base64
import hashlib
import hmac
import shlex
import sys
import time
import urllib.parse


def signature(token, url, params):
    try:
        from twilio.request_validator import RequestValidator
        return RequestValidator(token).compute_signature(url, params)
    except ImportError:
        data = url + "".join(k + params[k] for k in sorted(params))
        return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def main():
    base, path, token = sys.argv[1:4]
    sid = "SM%032x" % int(time.time() * 1000)
    params = {"MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+34612345678",
              "To": "+15557654321", "Body": "Hola, my order has not arrived", "NumMedia": "0"}
    sig = signature(token, base + path, params)
    body = urllib.parse.urlencode(params)
    print("run: send a signed test SMS with:")
    print("  curl -i -X POST " + shlex.quote(base + path) + " -H " +
          shlex.quote("X-Twilio-Signature: " + sig) + " --data " + shlex.quote(body))


if __name__ == "__main__":
    main()
