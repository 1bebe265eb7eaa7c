#!/usr/bin/env python3
"""`slm serve` under attack and overload, measured (issue 20). Loopback only;
every loop is bounded in count and time, and the probe stops by itself.

  slowloris  N connections that send one header byte per --interval seconds
             (reconnecting when cut), from --attacker (a loopback address,
             default 127.0.0.2); meanwhile a normal request (a small
             completion) is timed against its latency on the idle server.
  ttft       C concurrent clients each sending --requests streamed
             completions back to back: time to first token p50/p99, how
             many streams ended without [DONE], 503s, and the server's
             queue-time histogram.

It starts the server itself (--bin, -m, --server-args) on --port, unless
--external is given (then the server on --port is used as it is).

usage: bench/serve_probe.py slowloris [--conns 500] [--seconds 30] [--attacker 127.0.0.2]
       bench/serve_probe.py ttft [--streams 16,64] [--max-tokens 64] [--requests 2]
       common: [--bin build/slm] [-m MODEL] [--port 18790] [--server-args "--slots 4 -t 2"]
Standard library only."""
import argparse, errno, http.client, json, os, re, select, shlex, socket, statistics, subprocess, sys, threading, time

MAX_SECONDS = 300
MAX_CONNS = 4000


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")


def start_server(a):
    if a.external:
        return None
    model = a.model or os.path.expanduser("~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf")
    cmd = [a.bin, "serve", "-m", model, "--port", str(a.port)] + shlex.split(a.server_args)
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    t_end = time.time() + 120
    while time.time() < t_end:
        line = p.stderr.readline()
        if not line:
            break
        if "listening on" in line:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            print(f"server: {' '.join(cmd)}", flush=True)
            return p
    p.kill()
    sys.exit("the server did not start")


def stop_server(p):
    if p:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def small_request(port, src="127.0.0.1", timeout=60):
    """A normal, small request: a 4-token greedy completion. Returns (seconds, status)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    t0 = time.time()
    try:
        s.connect(("127.0.0.1", port))
        body = json.dumps({"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
        m = re.match(rb"HTTP/1\.1 (\d+)", out)
        return time.time() - t0, int(m.group(1)) if m else None
    except OSError as e:
        return time.time() - t0, f"error {e.errno}"
    finally:
        s.close()


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return text


# ---- slowloris --------------------------------------------------------------------------------------

def slowloris(a):
    n = min(a.conns, MAX_CONNS)
    seconds = min(a.seconds, MAX_SECONDS)
    idle = [small_request(a.port)[0] for _ in range(a.samples)]
    idle_med = statistics.median(idle)
    print(f"idle: a small completion takes {idle_med * 1e3:.0f} ms (median of {a.samples})", flush=True)

    conns = {}          # fd -> [socket, bytes sent]
    stats = {"opened": 0, "503": 0, "408": 0, "closed": 0, "connect_failed": 0}
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    stop_at = time.time() + seconds
    def open_one():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((a.attacker, 0))
            s.connect_ex(("127.0.0.1", a.port))
        except OSError:
            s.close()
            stats["connect_failed"] += 1
            return
        conns[s.fileno()] = [s, 0]
        stats["opened"] += 1
    def drop(fd, why):
        s = conns.pop(fd)[0]
        stats[why] += 1
        s.close()

    results, lock = [], threading.Lock()
    def measure():
        time.sleep(min(5.0, seconds / 3))  # let the attack settle
        for _ in range(a.samples):
            if time.time() > stop_at - 1:
                break
            r = small_request(a.port, a.client)
            with lock:
                results.append(r)
            time.sleep(0.5)
    mt = threading.Thread(target=measure)
    mt.start()
    held_max = 0
    while time.time() < stop_at:
        # top up to n (a bounded number of new connections per round)
        for _ in range(min(n - len(conns), 200)):
            open_one()
        t_round = time.time()
        for fd in list(conns):
            s, sent = conns[fd]
            try:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    data = s.recv(4096)
                    drop(fd, "503" if data.startswith(b"HTTP/1.1 503") else "408" if data.startswith(b"HTTP/1.1 408")
                         else "closed")
                    continue
                chunk = head[sent:sent + 1] if sent < len(head) else b"a"
                s.send(chunk)
                conns[fd][1] += 1
            except BlockingIOError:
                pass
            except OSError:
                drop(fd, "closed")
        held_max = max(held_max, len(conns))
        time.sleep(max(0.0, a.interval - (time.time() - t_round)))
    mt.join()
    for fd in list(conns):
        conns.pop(fd)[0].close()
    lat = [r[0] for r in results if r[1] == 200]
    codes = [r[1] for r in results]
    med = statistics.median(lat) if lat else float("nan")
    print(f"attack: {n} slowloris connections from {a.attacker} for {seconds} s "
          f"(one byte per {a.interval} s each): {stats['opened']} opened, answered 503 at once: {stats['503']}, "
          f"cut with 408: {stats['408']}, closed otherwise: {stats['closed']}")
    print(f"under attack: a small completion from {a.client} takes {med * 1e3:.0f} ms (median of {len(lat)}; "
          f"statuses {codes}); {med / idle_med:.2f}x its idle latency (goal: under 2x)")
    m = metrics(a.port)
    for line in m.splitlines():
        if line.startswith("slm_connections_dropped_total{"):
            print("  " + line)
    return 0 if lat and len(lat) == len(codes) and med < 2 * idle_med else 1


# ---- time to first token under load -------------------------------------------------------------------

def stream_once(port, k, i, max_tokens):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"prompt": f"Story {k}.{i}: Once upon a time", "max_tokens": max_tokens, "temperature": 0.8,
                       "seed": k * 1000 + i, "ignore_eos": True, "stream": True})
    t0 = time.time()
    try:
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            r.read()
            return {"status": r.status}
        first, done, n = None, False, 0
        for line in r:
            if line.startswith(b"data: [DONE]"):
                done = True
            elif line.startswith(b"data: "):
                ev = json.loads(line[6:])
                if ev.get("choices") and ev["choices"][0].get("text"):
                    n += 1
                    if first is None:
                        first = time.time() - t0
        return {"status": 200, "ttft": first, "done": done, "total": time.time() - t0}
    except (OSError, http.client.HTTPException) as e:
        return {"status": f"error {e}"}
    finally:
        c.close()


def hist_quantiles(text, name):
    """(count, approx p50, approx p99) from a Prometheus histogram: the bucket bound reaching it."""
    b = [(float(le) if le != "+Inf" else float("inf"), int(v))
         for le, v in re.findall(name + r'_bucket\{le="([^"]+)"\} (\d+)', text)]
    if not b or b[-1][1] == 0:
        return 0, None, None
    tot = b[-1][1]
    q = lambda p: next(le for le, v in b if v >= p * tot)
    return tot, q(0.5), q(0.99)


def ttft(a):
    rc = 0
    for conc in [int(x) for x in a.streams.split(",")]:
        before = metrics(a.port)
        res, lock = [], threading.Lock()
        t_end = time.time() + MAX_SECONDS
        def worker(k):
            for i in range(a.requests):
                if time.time() > t_end:
                    break
                r = stream_once(a.port, k, i, a.max_tokens)
                with lock:
                    res.append(r)
        t0 = time.time()
        ths = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        wall = time.time() - t0
        after = metrics(a.port)
        ok = [r for r in res if r["status"] == 200]
        ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
        cut = sum(1 for r in ok if not r["done"])
        other = [r["status"] for r in res if r["status"] != 200]
        n0, _, _ = hist_quantiles(before, "slm_queue_time_seconds")
        n1, q50, q99 = hist_quantiles(after, "slm_queue_time_seconds")
        print(f"{conc} streams x {a.requests} (max_tokens {a.max_tokens}) in {wall:.1f} s: {len(ok)} answered, "
              f"TTFT p50 {statistics.median(ttfts):.2f} s, p99 {pct(ttfts, 0.99):.2f} s, "
              f"max {max(ttfts):.2f} s; ended without [DONE]: {cut}; other statuses: {other[:5]} ({len(other)}); "
              f"server queue time (all requests so far, bucket bounds) p50 <= {q50} s, p99 <= {q99} s",
              flush=True)
        if cut or other:
            rc = 1
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["slowloris", "ttft"])
    ap.add_argument("--bin", default="build/slm")
    ap.add_argument("-m", "--model")
    ap.add_argument("--port", type=int, default=18790)
    ap.add_argument("--server-args", default="--slots 4")
    ap.add_argument("--external", action="store_true", help="use the server already on --port")
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--attacker", default="127.0.0.2")
    ap.add_argument("--client", default="127.0.0.1")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--streams", default="16,64")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2)
    a = ap.parse_args()
    for addr in (a.attacker, a.client):
        if not addr.startswith("127."):
            sys.exit("loopback addresses only (127.0.0.0/8)")
    p = start_server(a)
    try:
        rc = slowloris(a) if a.what == "slowloris" else ttft(a)
    finally:
        stop_server(p)
    sys.exit(rc)


if __name__ == "__main__":
    main()
