#!/usr/bin/env python3
"""Checks tasks/events/gen_events.py (plain python3, no model):

1. the same seed gives the same bytes, another seed other data, and the
   committed test set and eval tasks are what the generator writes now;
2. every example of every split obeys the task's rules, recomputed here from
   the MESSAGE TEXT with a parser of its own (regular expressions over the
   spellings docs/TRAINING.md lists) and Python's datetime, not with the
   generator's code: the date (weekday = first such day strictly after
   today; a date without a year = the first on or after today; today,
   tomorrow, in N days), the start time, the duration (or a time range's
   length), the attendees in order of mention, the location with its article
   after its preposition; and the answer line is json.dumps of the object with
   the keys in order, ensure_ascii=False;
3. the held-out vocabulary never occurs in the training or validation data.

Exit 1 on the first kind of failure found (all failures are listed)."""
import datetime as dt
import filecmp
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GEN = os.path.join(ROOT, "tasks", "events", "gen_events.py")
sys.path.insert(0, os.path.dirname(GEN))
import gen_events as G  # noqa: E402  (only for its pools and generate())

WD = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MON = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
       "november", "december"]
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
         "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "twenty": 20, "twenty-one": 21, "a": 1, "an": 1}
PREFIX = re.compile(r"^Today is (\w+), (\d{4}-\d{2}-\d{2})\. Extract the event from the message as JSON with the "
                    r"keys date, start, duration_min, attendees, location\.\nMessage: (.*)$", re.S)
failures = []


def fail(msg):
    failures.append(msg)


def num(s):
    return int(s) if s.isdigit() else WORDS[s.lower()]


MONTH_RE = r"(january|february|march|april|may|june|july|august|september|october|november|december|" \
           r"jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec)"


def month_no(s):
    s = s.lower()
    return next(i + 1 for i, m in enumerate(MON) if m.startswith(s))


def expect_date(today, msg):
    """The event date the message states, by the task's rules."""
    low = msg.lower()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", msg)
    if m:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    m = re.search(r"\b" + MONTH_RE + r" (\d{1,2})(?:st|nd|rd|th)?(?:, (\d{4}))?\b", low) or \
        re.search(r"\b(\d{1,2})(?:st|nd|rd|th)? (?:of )?" + MONTH_RE + r"(?: (\d{4}))?\b", low)
    if m:
        a, b, year = m.groups()
        month, day = (month_no(a), int(b)) if not a.isdigit() else (month_no(b), int(a))
        if year:
            return dt.date(int(year), month, day)
        d = dt.date(today.year, month, day)
        return d if d >= today else dt.date(today.year + 1, month, day)
    m = re.search(r"\bin ([\w-]+) days\b|\b([\w-]+) days from now\b", low)
    if m:
        return today + dt.timedelta(days=num(m[1] or m[2]))
    if re.search(r"\bin a week\b", low):
        return today + dt.timedelta(days=7)
    if re.search(r"\bin two weeks\b", low):
        return today + dt.timedelta(days=14)
    if "tomorrow" in low:
        return today + dt.timedelta(days=1)
    if re.search(r"\btoday\b", low):
        return today
    for i, w in enumerate(WD):
        if re.search(r"\b" + w + r"\b", low):
            d = today + dt.timedelta(days=1)
            while d.weekday() != i:
                d += dt.timedelta(days=1)
            return d
    return None


TIME_RE = re.compile(r"\b(noon|12 noon|midday|(\d{1,2}):(\d{2})(?! ?[ap]\.?m)(?!\w)|(\d{1,2})(?::(\d{2}))? ?"
                     r"(am|pm|a\.m\.|p\.m\.)|(\d{1,2}) in the (morning|afternoon|evening))", re.I)


def times(msg):
    """Every time of day in the message: (minutes after midnight, start, end)."""
    out = []
    for m in TIME_RE.finditer(msg):
        # a duration such as "1h30" or "2h" is no time of day
        if msg[m.end():m.end() + 1] == "h":
            continue
        if m[1].lower() in ("noon", "12 noon", "midday"):
            out.append((12 * 60, m.start(), m.end()))
        elif m[2] is not None:
            # "Room 3.14" and version numbers are no times: the colon form only
            if re.search(r"(\d|\.)$", msg[:m.start()]):
                continue
            out.append((int(m[2]) * 60 + int(m[3]), m.start(), m.end()))
        elif m[4] is not None:
            h = int(m[4]) % 12 + (12 if m[6].lower().startswith("p") else 0)
            out.append((h * 60 + int(m[5] or 0), m.start(), m.end()))
        else:
            h = int(m[7]) % 12 + (0 if m[8].lower() == "morning" else 12)
            out.append((h * 60, m.start(), m.end()))
    return out


DUR_RE = re.compile(r"\b[Ff]or |How long: ")


def minutes_of(s):
    s = s.strip().lower()
    pats = [
        (r"^(\d+) (?:minutes|min|mins)$", lambda m: int(m[1])),
        (r"^(\d+)h$", lambda m: 60 * int(m[1])),
        (r"^(\d+)h(\d\d)$", lambda m: 60 * int(m[1]) + int(m[2])),
        (r"^half an hour$", lambda m: 30),
        (r"^a quarter of an hour$", lambda m: 15),
        (r"^(an|one|\d+|\w+) hours?$", lambda m: 60 * num(m[1])),
        (r"^(\d+)\.5 hours$", lambda m: 60 * int(m[1]) + 30),
        (r"^an hour and a half$", lambda m: 90),
        (r"^(\w+) and a half hours$", lambda m: 60 * num(m[1]) + 30),
        (r"^(\d+) hours? (\d+) minutes$", lambda m: 60 * int(m[1]) + int(m[2])),
        (r"^an hour and (\d+) minutes$", lambda m: 60 + int(m[1])),
    ]
    for p, f in pats:
        m = re.match(p, s)
        if m:
            return f(m)
    return None


def expect_duration(msg, event_times):
    if len(event_times) >= 2 and msg[event_times[0][2]:event_times[1][1]] in (" to ", " until "):
        return event_times[1][0] - event_times[0][0]
    m = re.search(r"\b(\d+)-minute\b", msg)
    if m:
        return int(m[1])
    m = re.search(r"\b(one|two|three)-hour\b", msg)
    if m:
        return 60 * num(m[1])
    for m in DUR_RE.finditer(msg):
        # the longest run of 1 to 6 words after "for" that is a duration
        words = re.split(r"(?<=[^\s.,?!|])(?=[,?!|]|\.(?:\s|$))| ", msg[m.end():])
        words = [w for w in words if w]
        for k in range(min(6, len(words)), 0, -1):
            v = minutes_of(" ".join(words[:k]))
            if v is not None:
                return v
    return None


def known(pool_pair):
    return [x[0] if isinstance(x, tuple) else x for pool in pool_pair for x in pool]


NAMES = sorted(known(G.NAMES), key=len, reverse=True)
PLACES = sorted(known(G.LOCATIONS), key=len, reverse=True)


def expect_attendees(msg):
    found = []
    for n in NAMES:
        for m in re.finditer(r"(?<![\w'])" + re.escape(n) + r"(?![\w'-])", msg):
            # a longer name ("Anna Schmidt") covers the shorter one ("Anna")
            if not any(s <= m.start() < e for s, e, _ in found):
                found.append((m.start(), m.end(), n))
    return [n for _, _, n in sorted(found)]


def expect_location(msg):
    for p in PLACES:
        m = re.search(r"\b(?:[Aa]t|[Ii]n|[Oo]n|[Oo]ver) " + re.escape(p) + r"(?![\w])", msg)
        if m:
            return p
    return None


def check_example(where, user, answer):
    m = PREFIX.match(user)
    if not m:
        fail("%s: the user turn does not follow the fixed wording: %r" % (where, user[:120]))
        return
    weekday, today_s, msg = m.groups()
    today = dt.date.fromisoformat(today_s)
    if G.WEEKDAYS[today.weekday()] != weekday:
        fail("%s: %s is a %s, not a %s" % (where, today_s, G.WEEKDAYS[today.weekday()], weekday))
    try:
        got = json.loads(answer)
    except ValueError:
        fail("%s: the answer is not JSON: %r" % (where, answer))
        return
    if list(got) != ["date", "start", "duration_min", "attendees", "location"] or \
            json.dumps(got, ensure_ascii=False) != answer or "\n" in answer:
        fail("%s: the answer is not json.dumps of the keys in order: %r" % (where, answer))
    ts = times(msg)
    d = expect_date(today, msg)
    exp = {"date": d.isoformat() if d else None,
           "start": "%02d:%02d" % divmod(ts[0][0], 60) if ts else None,
           "duration_min": expect_duration(msg, ts),
           "attendees": expect_attendees(msg),
           "location": expect_location(msg)}
    for k, v in exp.items():
        if got.get(k) != v:
            fail("%s: %s is %r, the message says %r: %s" % (where, k, got.get(k), v, msg))


def read_chat(path):
    out = []
    for i, line in enumerate(open(path, encoding="utf-8")):
        msgs = json.loads(line)["messages"]
        if [m["role"] for m in msgs] != ["user", "assistant"]:
            fail("%s:%d: not a user + assistant pair" % (path, i + 1))
            continue
        out.append((msgs[0]["content"], msgs[1]["content"]))
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        a, b, c = (os.path.join(tmp, x) for x in "abc")
        run = lambda out, seed, n: subprocess.run(  # noqa: E731
            [sys.executable, GEN, "--out", out, "--seed", str(seed), "--train", str(n), "--val", "200", "--test", "200"],
            check=True, stdout=subprocess.DEVNULL)
        run(a, 20261207, 3000)
        run(b, 20261207, 3000)
        run(c, 7, 3000)
        files = ["train.jsonl", "val.jsonl", "test.jsonl", "events_test.jsonl", "events_test_3shot.jsonl"]
        for f in files:
            if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False):
                fail("the same seed gave two different %s" % f)
            if filecmp.cmp(os.path.join(a, f), os.path.join(c, f), shallow=False):
                fail("seeds 20261207 and 7 gave the same %s" % f)
        for f in ["test.jsonl", "events_test.jsonl", "events_test_3shot.jsonl"]:
            committed = os.path.join(ROOT, "tasks", "events", f)
            if not filecmp.cmp(os.path.join(a, f), committed, shallow=False):
                fail("tasks/events/%s differs from what gen_events.py writes (regenerate it)" % f)
        splits = {s: read_chat(os.path.join(a, s + ".jsonl")) for s in ("train", "val", "test")}
        for s, exs in splits.items():
            for i, (u, ans) in enumerate(exs):
                check_example("%s %d" % (s, i), u, ans)
        # the eval tasks hold the test set's turns and answers
        test = splits["test"]
        task = [json.loads(l) for l in open(os.path.join(a, "events_test.jsonl"), encoding="utf-8")]
        shot = [json.loads(l) for l in open(os.path.join(a, "events_test_3shot.jsonl"), encoding="utf-8")]
        train_pairs = set(splits["train"])
        for i, (t, s3, (u, ans)) in enumerate(zip(task, shot, test)):
            if not (t["chat"] is True and t["prompt"] == u and t["answer"] == ans and t["score"] == "json_fields"
                    and t["stop"] == ["\n"]):
                fail("events_test.jsonl item %d does not match test.jsonl" % i)
            m = s3["messages"]
            if not (len(m) == 7 and m[-1] == {"role": "user", "content": u} and s3["answer"] == ans and
                    all((m[j]["content"], m[j + 1]["content"]) in train_pairs for j in (0, 2, 4))):
                fail("events_test_3shot.jsonl item %d: not 3 training examples + the test turn" % i)
        if len(task) != 200 or len(shot) != 200:
            fail("the eval tasks hold %d and %d items, not 200" % (len(task), len(shot)))
        # no test message in training; the held-out pools only in the test set
        train_msgs = {u for u, _ in splits["train"] + splits["val"]}
        if any(u in train_msgs for u, _ in test):
            fail("a test message also occurs in train/val")
        held = [x[0] if isinstance(x, tuple) else x
                for pool in (G.NAMES, G.LOCATIONS, G.ACTIVITIES, G.DISTRACTORS) for x in pool[1]]
        held += ["days from now", "in the afternoon", "in the morning", "in the evening", "Pencil me in",
                 "Save the date", "Would it suit you"]
        train_text = "\n".join(train_msgs)
        for h in held:
            if re.search(r"(?<![\w'])" + re.escape(h) + r"(?![\w'])", train_text):
                fail("held-out %r occurs in train/val" % h)
        test_text = "\n".join(u for u, _ in test)
        n_held = sum(1 for h in held if re.search(r"(?<![\w'])" + re.escape(h) + r"(?![\w'])", test_text))
        if n_held < len(held) * 0.8:
            fail("only %d of %d held-out items occur in the test set" % (n_held, len(held)))
    for f in failures[:40]:
        print("FAIL:", f)
    print("events_check: %d examples checked, %d failures" % (sum(len(v) for v in splits.values()), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
