#!/usr/bin/env python3
"""Drives slm serve's chat page in headless Chromium (Debian's `chromium`)
over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on fds 3 and 4, so no websocket library is needed).

Opens http://HOST:PORT/?q=PROMPT (the page sends PROMPT on load and streams
the answer), waits until the page says it is done, checks that the answer
arrived and that no error was shown, and saves a screenshot.

usage: serve_page_check.py URL PNG_OUT  (exit 0 ok, 1 failure)"""
import base64, json, os, struct, subprocess, sys, tempfile, time, zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py"))
from serve_harness import check, finish


class Browser:
    def __init__(self):
        self.prof = tempfile.mkdtemp(prefix="slm-chromium-")
        r_cmd, w_cmd = os.pipe()   # we write commands -> chromium reads fd 3
        r_ev, w_ev = os.pipe()     # chromium writes fd 4 -> we read
        def child():
            # via high numbers first, in case the pipes themselves are 3 or 4
            a, b = os.dup(r_cmd) + 100, os.dup(w_ev) + 100
            os.dup2(r_cmd, a)
            os.dup2(w_ev, b)
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.p = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--window-size=900,700", f"--user-data-dir={self.prof}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the child keeps its own copies; 3 and 4 are the dup2 targets
        os.close(r_cmd)
        os.close(w_ev)
        self.w, self.r = w_cmd, r_ev
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" not in self.buf:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise RuntimeError(f"{method}: no reply")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def png_stats(data):
    """Width, height and the number of distinct colours of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, bpp = 8, b"", 3
    w = h = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unexpected PNG type {depth}/{ctype}"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            for x in range(0, w, 2):
                colours.add(bytes(line[x * bpp:x * bpp + 3]))
        prev = line
    return w, h, len(colours)


def main():
    url, out = sys.argv[1], sys.argv[2]
    br = Browser()
    try:
        target = br.call("Target.createTarget", {"url": url})["targetId"]
        session = br.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        state, end = None, time.time() + 180
        while time.time() < end:
            r = br.call("Runtime.evaluate", {"expression": "document.body ? document.body.dataset.state || '' : ''",
                                             "returnByValue": True}, session)
            state = r.get("result", {}).get("value")
            if state in ("done", "error"):
                break
            time.sleep(0.3)
        info = br.call("Runtime.evaluate", {"expression": "JSON.stringify({a: [...document.querySelectorAll('.assistant')]"
                                            ".map(e => e.textContent), u: [...document.querySelectorAll('.user')]"
                                            ".map(e => e.textContent), e: [...document.querySelectorAll('.error')]"
                                            ".map(e => e.textContent), s: document.getElementById('status').textContent})",
                                            "returnByValue": True}, session)
        page = json.loads(info["result"]["value"])
        shot = br.call("Page.captureScreenshot", {"format": "png"}, session)
        png = base64.b64decode(shot["data"])
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(png)
        os.replace(tmp, out)
    finally:
        br.close()
    print(f"page state: {state}; user: {page['u']}; answer: {page['a']}; status: {page['s']!r}")
    check(state == "done", f"the page finished (state {state!r}, errors {page['e']})")
    check(page["a"] and page["a"][0].strip(), "a streamed answer on the page")
    check(not page["e"], f"the page shows no error ({page['e']})")
    w, h, ncol = png_stats(png)
    print(f"screenshot {out}: {len(png)} bytes, {w}x{h}, {ncol} distinct colours (sampled)")
    check(len(png) >= 5000 and w >= 400 and h >= 300 and ncol >= 8, "the screenshot is not empty")
    finish()


if __name__ == "__main__":
    main()
