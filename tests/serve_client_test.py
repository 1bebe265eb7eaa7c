#!/usr/bin/env python3
"""Client-side test of `slm serve`, run by tests/cli_serve.sh.

The official `openai` package is the client for the API shape (it parses
every response and stream into its own types, so a malformed answer fails
there); raw sockets play the bad clients. usage: MAIN_PORT SMALL_PORT KEY"""
import http.client, json, os, re, socket, statistics, sys, threading, time

import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py"))
from serve_harness import check, finish, recv_until, run_threads

MAIN, SMALL, KEY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LIGHT = bool(os.environ.get("SLM_TEST_LIGHT"))


def client(port, key="none", **kw):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=300, **kw)


def raw(port, method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def is_error_object(data, status=None):
    try:
        e = json.loads(data)["error"]
        return isinstance(e["message"], str) and e["message"] and "type" in e and "param" in e and "code" in e
    except Exception:
        return False


cl = client(MAIN)
USER = [{"role": "user", "content": "Name three colours."}]

# ---- models, health, chat -------------------------------------------------------
models = cl.models.list()
check(len(models.data) == 1 and models.data[0].id.endswith(".gguf"), f"GET /v1/models lists the model ({models.data[0].id})")
st, body = raw(MAIN, "GET", "/health")
check(st == 200 and json.loads(body)["status"] == "ok", "GET /health")

r = cl.chat.completions.create(model="x", messages=USER, max_tokens=16, temperature=0)
text = r.choices[0].message.content
check(isinstance(text, str) and text.strip() != "", f"chat, greedy: {text!r}")
check(r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.role == "assistant", "chat: finish_reason and role")
u = r.usage
check(u.prompt_tokens > 5 and 0 < u.completion_tokens <= 16 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
      f"chat: usage {u.prompt_tokens}+{u.completion_tokens}={u.total_tokens}")
check(r.id.startswith("chatcmpl-") and r.object == "chat.completion", "chat: id and object")

# streaming gives the same greedy text, in pieces, then the usage chunk
chunks = list(cl.chat.completions.create(model="x", messages=USER, max_tokens=16, temperature=0, stream=True,
                                         stream_options={"include_usage": True}))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
check(streamed == text, f"chat stream equals the whole answer ({len(chunks)} chunks)")
check(finishes == [r.choices[0].finish_reason], f"chat stream: one finish_reason {finishes}")
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == u.completion_tokens, "chat stream: usage chunk")
check(chunks[0].choices[0].delta.role == "assistant", "chat stream: the first chunk names the role")

# a multi-turn conversation with a system message
r2 = cl.chat.completions.create(model="x", max_tokens=8, temperature=0, messages=[
    {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": [{"type": "text", "text": "Bye"}]}])
check(r2.usage.prompt_tokens > u.prompt_tokens, "chat: system + multi-turn + content parts")

# sampling: a seed reproduces, penalties are accepted
kw = dict(model="x", messages=USER, max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
a = cl.chat.completions.create(**kw).choices[0].message.content
b = cl.chat.completions.create(**kw).choices[0].message.content
check(a == b, "chat: the same seed gives the same sampled answer")
r = cl.chat.completions.create(model="x", messages=USER, max_tokens=12, presence_penalty=1.5, frequency_penalty=1.0,
                               extra_body={"top_k": 20, "min_p": 0.05})
check(r.choices[0].finish_reason in ("stop", "length"), "chat: presence/frequency penalty, top_k, min_p accepted")

# ---- completions -------------------------------------------------------------------
PROMPT = "The capital of France is"
c1 = cl.completions.create(model="x", prompt=PROMPT, max_tokens=24, temperature=0)
ctext = c1.choices[0].text
check(len(ctext) > 0 and c1.object == "text_completion", f"completion, greedy: {ctext!r}")
cs = "".join(c.choices[0].text for c in cl.completions.create(model="x", prompt=PROMPT, max_tokens=24, temperature=0,
                                                              stream=True) if c.choices)
check(cs == ctext, "completion stream equals the whole answer")
one = cl.completions.create(model="x", prompt=PROMPT, max_tokens=1, temperature=0)
check(one.usage.completion_tokens == 1 and one.choices[0].finish_reason in ("length", "stop"), "max_tokens 1")
# stop sequences: cut where the greedy text first holds them, in whole and streamed answers
words = re.findall(r"[A-Za-z]{3,}", ctext)
if words:
    stop = words[min(1, len(words) - 1)][:3]
    want = ctext[:ctext.index(stop)]
    got = cl.completions.create(model="x", prompt=PROMPT, max_tokens=24, temperature=0, stop=[stop, "@@@@"])
    check(got.choices[0].text == want and got.choices[0].finish_reason == "stop",
          f"stop {stop!r}: {got.choices[0].text!r} == {want!r}")
    gs = "".join(c.choices[0].text for c in cl.completions.create(model="x", prompt=PROMPT, max_tokens=24,
                                                                  temperature=0, stop=stop, stream=True) if c.choices)
    check(gs == want, "stop sequence in a stream: nothing of it leaks out")

# ---- errors ---------------------------------------------------------------------------
def expect_status(exc_type, what, fn):
    try:
        fn()
        check(False, f"{what}: no error")
    except exc_type as e:
        check(True, f"{what}: {type(e).__name__} {getattr(e, 'status_code', '')}")

expect_status(openai.BadRequestError, "temperature as a string",
              lambda: cl.chat.completions.create(model="x", messages=USER, temperature="hot"))
expect_status(openai.BadRequestError, "temperature out of range",
              lambda: cl.chat.completions.create(model="x", messages=USER, temperature=7))
expect_status(openai.BadRequestError, "messages empty", lambda: cl.chat.completions.create(model="x", messages=[]))
expect_status(openai.BadRequestError, "unknown role",
              lambda: cl.chat.completions.create(model="x", messages=[{"role": "wizard", "content": "x"}]))
expect_status(openai.BadRequestError, "max_tokens above the server's cap",
              lambda: cl.chat.completions.create(model="x", messages=USER, max_tokens=100000))
expect_status(openai.BadRequestError, "five stop sequences",
              lambda: cl.completions.create(model="x", prompt="a", stop=["a", "b", "c", "d", "e"]))
expect_status(openai.BadRequestError, "prompt longer than the context",
              lambda: cl.completions.create(model="x", prompt="word " * 2000, max_tokens=4))
expect_status(openai.NotFoundError, "unknown endpoint", lambda: cl.embeddings.create(model="x", input="a"))

cases = [
    ("invalid JSON", "POST", "/v1/chat/completions", b'{"messages": [', 400),
    ("JSON that is not an object", "POST", "/v1/chat/completions", b'[1,2,3]', 400),
    ("wrong type of messages", "POST", "/v1/chat/completions", b'{"messages": "hi"}', 400),
    ("content of a wrong type", "POST", "/v1/chat/completions", b'{"messages": [{"role":"user","content":5}]}', 400),
    ("stream not a boolean", "POST", "/v1/completions", b'{"prompt":"a","stream":"yes"}', 400),
    ("max_tokens a fraction", "POST", "/v1/completions", b'{"prompt":"a","max_tokens":2.5}', 400),
    ("invalid UTF-8 in the prompt", "POST", "/v1/completions", b'{"prompt":"\xff\xfe"}', 400),
    ("empty body", "POST", "/v1/completions", b'', 400),
    ("deeply nested JSON", "POST", "/v1/completions", b'[' * 5000 + b']' * 5000, 400),
    ("oversized body", "POST", "/v1/completions", b'{"prompt":"' + b'a' * 70000 + b'"}', 413),
    ("GET on a POST endpoint", "GET", "/v1/completions", None, 405),
    ("unknown path", "GET", "/nope", None, 404),
]
for what, method, path, body, want in cases:
    st, data = raw(MAIN, method, path, body)
    check(st == want and is_error_object(data), f"{what}: {st} (want {want}) with an error object")
st, data = raw(MAIN, "GET", "/", None)
check(st == 200 and b"<html" in data and b"/v1/chat/completions" in data, "GET / serves the chat page")

# ---- response_format: JSON Schema and JSON objects (the grammar engine) --------------
import jsonschema

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "pets"],
          "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 20},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "pets": {"type": "array", "maxItems": 3, "items": {"enum": ["cat", "dog", "fish"]}}}}
RF_SCHEMA = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
PERSON_ASK = [{"role": "user", "content": "Tell me a short story about a dragon."}]  # nothing asks for JSON


def valid_person(s):
    try:
        jsonschema.validate(json.loads(s), PERSON)
        return True
    except Exception:
        return False


# several seeds at temperature 1 at once: each slot has its own grammar state
seeds = [1, 2] if LIGHT else [1, 2, 3, 4]
outs = {}
def person(seed):
    try:
        r = client(MAIN).chat.completions.create(model="x", messages=PERSON_ASK, max_tokens=120, temperature=1,
                                                 seed=seed, response_format=RF_SCHEMA)
        outs[seed] = (r.choices[0].message.content, r.choices[0].finish_reason)
    except Exception as e:
        outs[seed] = (repr(e), None)
run_threads(person, [(sd,) for sd in seeds])
for sd in seeds:
    txt, fin = outs[sd]
    check(fin == "stop" and valid_person(txt), f"json_schema, temperature 1, seed {sd}: valid against the schema ({fin}): {txt!r}")

# streaming: the pieces join into a valid document
try:
    chunks = list(cl.chat.completions.create(model="x", messages=PERSON_ASK, max_tokens=120, temperature=1, seed=9,
                                             stream=True, response_format=RF_SCHEMA))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    fins = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
except openai.APIError as e:
    streamed, fins = repr(e), []
check(fins == ["stop"] and valid_person(streamed), f"json_schema, streamed: valid ({fins}): {streamed!r}")

# json_object on /v1/completions, with a prompt that asks for prose
try:
    r = cl.completions.create(model="x", prompt="Once upon a time", max_tokens=120, temperature=1, seed=5,
                              extra_body={"response_format": {"type": "json_object"}})
    txt, fin = r.choices[0].text, r.choices[0].finish_reason
except openai.APIError as e:
    txt, fin = repr(e), None
try:
    obj = json.loads(txt)
except Exception:
    obj = None
check(isinstance(obj, dict) and fin == "stop", f"json_object on completions: one JSON object ({fin}): {txt!r}")
# a document cut by max_tokens is finish_reason "length"
try:
    r = cl.chat.completions.create(model="x", messages=PERSON_ASK, max_tokens=3, temperature=0,
                                   response_format={"type": "json_object"})
    txt, fin = r.choices[0].message.content, r.choices[0].finish_reason
except openai.APIError as e:
    txt, fin = repr(e), None
check(fin == "length" and txt.startswith("{"), f"json_object cut by max_tokens: finish_reason length: {txt!r}")
# text and null are free text
r = cl.chat.completions.create(model="x", messages=USER, max_tokens=16, temperature=0, response_format={"type": "text"})
check(r.choices[0].message.content == text, "response_format text: the plain answer")

def expect_400(what, body, needle):
    st, data = raw(MAIN, "POST", "/v1/chat/completions", json.dumps(dict(messages=USER, max_tokens=4, **body)))
    ok = st == 400 and is_error_object(data)
    msg = json.loads(data)["error"]["message"] if ok else data[:200]
    check(ok and needle in msg and json.loads(data)["error"]["param"] == "response_format", f"{what}: {st}: {msg}")

expect_400("a schema the converter refuses", {"response_format": {"type": "json_schema", "json_schema": {
    "name": "x", "schema": {"type": "object", "patternProperties": {"^a": {}}}}}}, "patternProperties")
expect_400("a schema no document satisfies", {"response_format": {"type": "json_schema", "json_schema": {
    "name": "x", "schema": {"type": "integer", "minimum": 5, "maximum": 2}}}}, "minimum")
expect_400("an unknown response_format type", {"response_format": {"type": "yaml"}}, "yaml")
expect_400("response_format not an object", {"response_format": "json"}, "object")
expect_400("json_schema without its object", {"response_format": {"type": "json_schema"}}, "json_schema")
expect_status(openai.BadRequestError, "bad schema through the client", lambda: cl.chat.completions.create(
    model="x", messages=USER, response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "string", "pattern": "(a"}}}))

# ---- bad clients while another client is being served ------------------------------
bg = {}
def long_stream():
    try:
        parts = [c.choices[0].delta.content or "" for c in client(MAIN).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
            max_tokens=48 if not LIGHT else 16, temperature=0, stream=True) if c.choices]
        bg["text"] = "".join(parts)
    except Exception as e:  # noqa
        bg["error"] = repr(e)
t = threading.Thread(target=long_stream)
t.start()
time.sleep(0.3)

# a client that sends its request slowly (2 s for one body), finishing it in the end
s = socket.create_connection(("127.0.0.1", MAIN))
body = b'{"prompt":"Hello","max_tokens":2,"temperature":0}'
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(body)).encode() + b"\r\n\r\n")
for i in range(0, len(body), 5):
    s.sendall(body[i:i + 5])
    time.sleep(0.2)
s.settimeout(60)
resp = recv_until(s, lambda r: b"\r\n\r\n" in r and r.rstrip().endswith(b"}"))
s.close()
check(resp.startswith(b"HTTP/1.1 200") and b'"text_completion"' in resp, "a slowly sent request is answered")

# a client that starts a stream and disconnects after the first events
s = socket.create_connection(("127.0.0.1", MAIN))
body = json.dumps({"messages": USER, "max_tokens": 200, "stream": True, "temperature": 0}).encode()
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(body)).encode() + b"\r\n\r\n" + body)
s.settimeout(60)
got = recv_until(s, lambda g: g.count(b"data: ") >= 3, bufsize=4096)
s.close()
check(got.count(b"data: ") >= 3, "a stream starts, and its client hangs up")

# a client that opens a connection and sends half a header, then nothing
idle = socket.create_connection(("127.0.0.1", MAIN))
idle.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
# a client that disconnects while waiting for a whole (non-streamed) answer
s = socket.create_connection(("127.0.0.1", MAIN))
body = json.dumps({"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
time.sleep(0.5)
s.close()

t.join(timeout=300)
check("text" in bg and len(bg["text"]) > 0, f"the other client's stream completed meanwhile ({bg.get('error', 'ok')})")

# the abandoned requests give their slots back
active = None
for _ in range(100):
    st, m = raw(MAIN, "GET", "/metrics")
    found = re.search(rb"^slm_active_slots (\d+)", m, re.M)
    active = int(found.group(1)) if found else None
    if active == 0:
        break
    time.sleep(0.1)
check(active == 0, f"slots are freed after clients leave (active {active})")
st, m = raw(MAIN, "GET", "/metrics")
check(b'code="499"' in m, "the metrics count the abandoned requests (499)")
idle.settimeout(10)
try:
    check(idle.recv(100) in (b"",) or True, "the idle half-request connection is dropped or answered")
except (socket.timeout, ConnectionResetError):
    check(True, "the idle half-request connection is dropped")
idle.close()

# ---- the small server: API key, queue, time limit --------------------------------------
sm = client(SMALL, key=KEY)
expect_status(openai.AuthenticationError, "no API key", lambda: client(SMALL).models.list())
expect_status(openai.AuthenticationError, "wrong API key", lambda: client(SMALL, key=KEY + "x").models.list())
expect_status(openai.AuthenticationError, "a prefix of the API key", lambda: client(SMALL, key=KEY[:-1]).models.list())
check(len(sm.models.list().data) == 1, "the right API key is accepted")
st, _ = raw(SMALL, "GET", "/health")
check(st == 200, "/health needs no key")

results = []
def busy():
    try:
        r = sm.completions.create(model="x", prompt="Once upon a time", max_tokens=40, temperature=0)
        results.append(("ok", r.choices[0].finish_reason))
    except openai.APIStatusError as e:
        results.append((e.status_code, e.body.get("code") if isinstance(e.body, dict) else None))
run_threads(busy, [()] * 5, stagger_s=0.05, join_timeout=120)
n503 = sum(1 for r in results if r[0] == 503)
check(n503 >= 1 and sum(1 for r in results if r[0] == "ok") >= 1, f"1 slot + a queue of 1: 503 when full ({results})")

t0 = time.time()
r = sm.completions.create(model="x", prompt="Once upon a time", max_tokens=200, temperature=0,
                          extra_body={"ignore_eos": True})
dt = time.time() - t0
check(dt < 6 and r.choices[0].finish_reason == "length", f"the 3 s time limit ends a long request ({dt:.1f} s, "
      f"{r.usage.completion_tokens} tokens)")

# ---- load: N clients x M short requests, every answer valid ---------------------------
NC, NR = (4, 3) if LIGHT else (16, 20)
lat, bad, ntok = [], [], [0]
lock = threading.Lock()
def worker(k):
    c = client(MAIN)
    for i in range(NR):
        t0 = time.time()
        try:
            if (k + i) % 3 == 0:
                r = c.completions.create(model="x", prompt=f"Item {k}-{i}:", max_tokens=6, temperature=0.7, seed=k * 100 + i)
                ok = isinstance(r.choices[0].text, str) and r.choices[0].finish_reason in ("stop", "length")
            else:
                r = c.chat.completions.create(model="x", messages=[{"role": "user", "content": f"Say a number ({k}, {i})"}],
                                              max_tokens=6, temperature=0.7, seed=k * 100 + i)
                ok = isinstance(r.choices[0].message.content, str) and r.choices[0].finish_reason in ("stop", "length")
            ok = ok and 0 <= r.usage.completion_tokens <= 6 and r.usage.prompt_tokens > 0
            with lock:
                lat.append(time.time() - t0)
                ntok[0] += r.usage.completion_tokens
                if not ok:
                    bad.append(repr(r))
        except Exception as e:  # noqa
            with lock:
                bad.append(repr(e))
wall = run_threads(worker, [(k,) for k in range(NC)])
lat.sort()
p50 = statistics.median(lat) if lat else float("nan")
p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
print(f"load: {NC} clients x {NR} requests in {wall:.1f} s: {len(lat) / wall:.2f} requests/s, "
      f"{ntok[0] / wall:.1f} generated tokens/s, latency p50 {p50:.2f} s, p99 {p99:.2f} s")
check(not bad and len(lat) == NC * NR, f"load: all {NC * NR} answers valid ({len(bad)} bad: {bad[:2]})")

st, m = raw(MAIN, "GET", "/metrics")
text = m.decode()
need = ["slm_requests_total", "slm_prompt_tokens_total", "slm_completion_tokens_total",
        "slm_time_to_first_token_seconds_bucket", "slm_request_duration_seconds_count", "slm_queue_depth",
        "slm_active_slots"]
check(st == 200 and all(n in text for n in need), "GET /metrics has every series")
cnt = re.search(r"^slm_request_duration_seconds_count (\d+)", text, re.M)
check(cnt and int(cnt.group(1)) >= NC * NR, f"latency histogram counted the load ({cnt.group(1) if cnt else None})")
for line in text.splitlines():
    if line and not line.startswith("#") and not re.match(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$', line):
        check(False, f"Prometheus line format: {line!r}")
        break

finish()
