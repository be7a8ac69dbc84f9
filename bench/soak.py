"""Soak of the authorisation server: full launches, then abandoned authorizes.

Each launch is what a browser does: GET /authorize (keeping the cookie), log in as
bernie, allow, then exchange the code with its PKCE verifier. The resident memory
(RSS) of the server process is read from /proc between phases, after its codes
have expired and the background purge has run, so what is left is what leaks.

    python3 bench/soak.py PORT PID        (bench/soak.sh starts the server)
"""

import base64
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.parse

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
BASE = f"http://127.0.0.1:{PORT}"
REDIRECT = "http://127.0.0.1:5173/"
SETTLE_SECS = 8  # code lifetime (2 s in soak.sh's config) + one purge interval (5 s)


def rss_mib():
    with open(f"/proc/{PID}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kib / 1024


class Browser:
    """One keep-alive connection and the cookie the server sets."""

    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT)
        self.cookie = None

    def request(self, method, path, form=None):
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        return response.status, response.getheader("Location"), text


def authorize(browser):
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": "demo-app", "redirect_uri": REDIRECT,
        "scope": "patient/*.rs", "state": "soak", "aud": f"{BASE}/ccri-fhir/R4",
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    status, _, page = browser.request("GET", f"/ccri-auth/authorize?{query}")
    assert status == 200, page
    return re.search(r'name="txn" value="([^"]+)"', page).group(1), verifier


def launch(browser):
    txn, verifier = authorize(browser)
    browser.request("POST", "/ccri-auth/authorize/login",
                    {"txn": txn, "username": "bernie", "password": "password"})
    status, location, page = browser.request("POST", "/ccri-auth/authorize/consent",
                                             {"txn": txn, "decision": "allow"})
    assert status == 303, page
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    status, _, body = browser.request("POST", "/ccri-auth/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": "demo-app",
    })
    assert status == 200, body


def phase(name, count, step):
    browser = Browser()
    started = time.monotonic()
    for _ in range(count):
        step(browser)
    elapsed = time.monotonic() - started
    time.sleep(SETTLE_SECS)
    rss = rss_mib()
    print(f"{name:<38} {count:>7,} in {elapsed:6.1f} s   RSS {rss:6.1f} MiB", flush=True)
    return rss


reference = phase("warm-up launches (reference)", 100, launch)
after_1k = phase("launches, total 1,000", 900, launch)
after_10k = phase("launches, total 10,000", 9_000, launch)
abandoned = phase("abandoned authorizes", 40_000, authorize)
print(f"RSS after 10,000 launches / after 1,000: {after_10k / after_1k:.3f}")
print(f"RSS after 40,000 abandoned authorizes / after 10,000 launches: {abandoned / after_10k:.3f}")
