#!/usr/bin/env python3
"""Aggregate generation speed of `slm serve` at 1, 4 and 16 concurrent streams.

Starts the server (--slots = the largest concurrency, so every stream is
batched), then for each concurrency C runs C client threads that each send
streamed /v1/completions requests back to back (short prompt, max_tokens
tokens, ignore_eos so every request generates exactly that many) for
--seconds. Aggregate tokens/s = generated tokens of all streams / wall time,
counting prompt processing and HTTP, as a user of the server sees it.
Tokens per server CPU-second (from /proc) is printed too: on a shared
machine it is far less disturbed by other jobs than wall-clock time.

usage: bench/serve_bench.py [--bin build/slm] [-m MODEL] [-t THREADS]
                            [--streams 1,4,16] [--seconds 20] [--max-tokens 64]
Standard library only."""
import argparse, http.client, json, os, re, subprocess, sys, threading, time


def stream_request(port, prompt, max_tokens, seed):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
                       "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.time()
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]}")
    n, first = 0, None
    for line in r:
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        ev = json.loads(line[6:])
        if ev.get("choices") and first is None:
            first = time.time() - t0
        if ev.get("usage"):
            n = ev["usage"]["completion_tokens"]
    c.close()
    return n, first


def cpu_seconds(pid):
    """User + system CPU time of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(port, conc, seconds, max_tokens):
    stop_at = time.time() + seconds
    toks, ttfts, lock = [0], [], threading.Lock()
    def worker(k):
        i = 0
        while time.time() < stop_at:
            n, ft = stream_request(port, f"Story {k}.{i}: Once upon a time", max_tokens, k * 1000 + i)
            with lock:
                toks[0] += n
                ttfts.append(ft)
            i += 1
    t0 = time.time()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    for t in ths: t.start()
    for t in ths: t.join()
    wall = time.time() - t0
    ttfts.sort()
    return toks[0] / wall, toks[0], wall, ttfts[len(ttfts) // 2] if ttfts else float("nan")


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.path.join(root, "build", "slm"))
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("-t", "--threads", type=int, default=0)
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    streams = [int(x) for x in a.streams.split(",")]
    cmd = [a.bin, "serve", "--port", "0", "--slots", str(max(streams)), "-c", "512"]
    if a.model: cmd += ["-m", a.model]
    if a.threads: cmd += ["-t", str(a.threads)]
    srv = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        m = re.search(r"listening on http://[0-9.]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if not port:
        sys.exit("the server did not start")
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    try:
        stream_request(port, "warm up", 8, 1)
        base = None
        base_cpu = None
        print("| streams | generated tokens | wall s | aggregate tokens/s | vs 1 stream | median time to first token s "
              "| tokens per server CPU-second | vs 1 stream |")
        print("|---|---|---|---|---|---|---|---|")
        for c in streams:
            cpu0 = cpu_seconds(srv.pid)
            tps, n, wall, ttft = run(port, c, a.seconds, a.max_tokens)
            tpc = n / max(cpu_seconds(srv.pid) - cpu0, 1e-9)
            base = base or tps
            base_cpu = base_cpu or tpc
            print(f"| {c} | {n} | {wall:.1f} | {tps:.1f} | {tps / base:.2f}x | {ttft:.3f} | {tpc:.1f} "
                  f"| {tpc / base_cpu:.2f}x |", flush=True)
    finally:
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
