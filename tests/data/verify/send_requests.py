"""POST a Hasura CLI telemetry body to argv[1] with a requests Session whose trust_env is False:
HTTP(S)_PROXY (and the CA bundle variables) are ignored, as some SDKs do. Errors are printed."""

import sys

import requests

session = requests.Session()
session.trust_env = False
body = {"topic": "cli", "data": {"command": "hasura version", "is_error": False,
                                 "uuid": "e462ce20-42dd-40fd-9549-edfb92f80455"}}
try:
    answer = session.post(sys.argv[1], json=body, timeout=10, verify=False)
    print("status", answer.status_code)
except requests.RequestException as exc:
    print("error", type(exc).__name__)
