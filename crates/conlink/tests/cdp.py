#!/usr/bin/python3
"""Drives one headless Chromium page over the DevTools protocol for the
live-page test (control_web.rs): the page stays open while the test changes
the lab, which `chromium --dump-dom` cannot do (it dumps at load, and the
page's event stream never ends).

Usage: cdp.py URL PROFILE_DIR. Then one JSON command per stdin line, one
JSON answer per stdout line:
  {"eval": "JS"}                      -> {"value": ...}
  {"wait": "JS", "timeout": SECONDS}  -> {"value": ...} once JS is truthy
  {"shot": "PATH", "width": W, "height": H} -> {"value": PATH}
Errors answer {"error": "..."}. Needs Debian's chromium and python3-websocket.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import websocket

url, profile = sys.argv[1], sys.argv[2]
chrome = subprocess.Popen(
    [os.environ.get("CHROMIUM", "chromium"), "--headless", "--no-sandbox", "--disable-gpu",
     "--no-first-run", "--disable-background-networking", "--disable-component-update",
     "--disable-sync", "--hide-scrollbars", "--remote-debugging-port=0",
     "--user-data-dir=" + profile, "--window-size=1200,800", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 30
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if time.time() > deadline or chrome.poll() is not None:
            raise SystemExit("chromium did not open its DevTools port")
        time.sleep(0.05)
    port = open(port_file).read().split()[0]
    pages = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port, timeout=10))
    page = [p for p in pages if p.get("type") == "page"][0]
    # No Origin header: Chromium refuses DevTools connections from origins
    # it was not told to allow.
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
    seq = [0]

    def call(method, **params):
        seq[0] += 1
        ws.send(json.dumps({"id": seq[0], "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == seq[0]:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m["result"]

    def js(expr):
        r = call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    call("Page.enable")
    call("Page.navigate", url=url)
    print(json.dumps({"value": "ready"}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if "eval" in cmd:
                out = {"value": js(cmd["eval"])}
            elif "wait" in cmd:
                end = time.time() + cmd.get("timeout", 10)
                while True:
                    try:
                        v = js(cmd["wait"])
                    except RuntimeError:
                        v = None
                    if v:
                        out = {"value": v}
                        break
                    if time.time() > end:
                        out = {"error": "timed out waiting for " + cmd["wait"]}
                        break
                    time.sleep(0.1)
            elif "shot" in cmd:
                call("Emulation.setDeviceMetricsOverride", width=cmd.get("width", 1200),
                     height=cmd.get("height", 800), deviceScaleFactor=1, mobile=False)
                data = call("Page.captureScreenshot", format="png")["data"]
                with open(cmd["shot"], "wb") as f:
                    f.write(base64.b64decode(data))
                out = {"value": cmd["shot"]}
            else:
                out = {"error": "unknown command"}
        except Exception as e:  # answered, so the test sees what failed
            out = {"error": str(e)}
        print(json.dumps(out), flush=True)
finally:
    chrome.terminate()
    try:
        chrome.wait(10)
    except subprocess.TimeoutExpired:
        chrome.kill()
