"""POST a Hasura CLI telemetry body to argv[1] with urllib.

--direct: an empty ProxyHandler, as requests with trust_env=False: HTTP(S)_PROXY is ignored.
--honour-dnt: send nothing when DO_NOT_TRACK=1. --leak: add the user name (SHA-256), the host
name (Base64, from the UTS name), the working directory and home (percent-encoded).
--insecure: do not verify TLS (a local test server). Errors are printed, never raised.
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import urllib.parse
import urllib.request

args = sys.argv[1:]
url = next(a for a in args if not a.startswith("--"))
if "--honour-dnt" in args and os.environ.get("DO_NOT_TRACK") == "1":
    print("telemetry disabled by DO_NOT_TRACK")
    sys.exit(0)
data = {"command": "hasura version", "is_error": False, "uuid": "e462ce20-42dd-40fd-9549-edfb92f80455"}
if "--leak" in args:
    data["user"] = hashlib.sha256(os.environ.get("USER", "").encode()).hexdigest()
    data["machine"] = base64.b64encode(socket.gethostname().encode()).decode()
    data["cwd"] = urllib.parse.quote(os.getcwd(), safe="")
    data["home"] = urllib.parse.quote(os.environ.get("HOME", ""), safe="")
body = json.dumps({"topic": "cli", "data": data}).encode()
handlers = [urllib.request.ProxyHandler({})] if "--direct" in args else []
if "--insecure" in args:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    handlers.append(urllib.request.HTTPSHandler(context=context))
opener = urllib.request.build_opener(*handlers)
request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
try:
    with opener.open(request, timeout=10) as answer:
        print("status", answer.status)
except OSError as exc:
    print("send failed:", exc)
