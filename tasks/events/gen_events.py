#!/usr/bin/env python3
"""Event extraction data for slm's fine-tuning task (docs/TRAINING.md, "The task").

Each example is a short message about one event, written from a structured
event drawn at random; the answer is computed from the structured event, never
by reading the text. Writes, into OUT (default: tasks/events):

  train.jsonl, val.jsonl, test.jsonl   chat JSONL: {"messages": [user, assistant]}
  events_test.jsonl                    the test set as an slm eval task (chat item,
                                       exact match + per-field "json_fields" scoring)
  events_test_3shot.jsonl              the same items with 3 training examples as
                                       earlier user/assistant turns (in-context baseline)

  python3 tasks/events/gen_events.py [--out DIR] [--seed S] [--train N] [--val N] [--test N]

Plain Python 3 standard library; the same seed gives the same bytes.
Train and validation share the training vocabulary and sentence frames; the
test set draws each part, with probability HOLDOUT_P, from pools that never
appear in training (see tasks/events/README.md for the list).
"""
import argparse
import datetime as dt
import json
import os
import random

INSTRUCTION = ("Extract the event from the message as JSON with the keys "
               "date, start, duration_min, attendees, location.")
KEYS = ("date", "start", "duration_min", "attendees", "location")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
NUMWORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
            8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 14: "fourteen",
            20: "twenty", 21: "twenty-one"}
HOLDOUT_P = 0.5
MAX_TOKENS = 96

# ---- vocabulary: (training pool, held-out pool used only by the test set) ----
NAMES = (
    ["Anna", "Ravi", "Chen", "Maria", "Tom", "Aisha", "Kenji", "Lucía", "Olu", "Sophie", "Ahmed",
     "Priya", "Lars", "Fatima", "Diego", "Mei", "Jonas", "Amara", "Hiroshi", "Zoë", "Noah", "Leila",
     "Pavel", "Ngozi", "Sven", "Camila", "Arjun", "Yuki", "Emma", "Kwame", "Ines", "Dmitri", "Hana",
     "Mateo", "Chloé", "Omar", "Ji-woo", "Sara", "Tariq", "Elena", "Wei", "Grace", "Mehmet", "Ingrid",
     "Kofi", "Rosa", "Liam", "Anjali", "Björn", "Thandiwe", "Marco", "Nadia", "Jamal", "Eva",
     "Anna Schmidt", "Ravi Patel", "Maria Gonzalez", "Kenji Watanabe", "Tom O'Brien", "Aisha Bello"],
    ["Oksana", "Tiago", "Farah", "Min-jun", "Nkechi", "Søren", "Valentina", "Rahul", "Keiko", "Emeka",
     "Alejandro", "Linh", "Magnus", "Zainab", "Étienne", "Bongani", "Ayşe", "Mikael", "Isabel",
     "Chiara", "Yusuf", "Hyun-woo", "Ama", "Haruka", "Lucas Moreau", "Farah Haddad", "Sanjay Iyer"])
LOCATIONS = (  # (place as written, prepositions that fit it)
    [("the Harbor Room", "in at"), ("the Maple Room", "in"), ("the boardroom", "in"),
     ("the small conference room", "in"), ("the lab", "in at"), ("the library", "at in"),
     ("the main office", "at in"), ("the gym", "at"), ("the park", "in at"), ("the cafeteria", "in at"),
     ("the Italian place on King Street", "at"), ("the coffee shop downstairs", "at"),
     ("Room 204", "in"), ("Conference Room B", "in"), ("Room 3.14", "in"), ("Meeting Room 7", "in"),
     ("Blue Bottle Coffee", "at"), ("Café Lumière", "at"), ("Central Park", "in at"),
     ("Union Station", "at"), ("Joe's Diner", "at"), ("12 Baker Street", "at"), ("450 Market Street", "at"),
     ("Zoom", "on over"), ("Google Meet", "on over"), ("the Oak Lounge", "in at"),
     ("Studio 5", "in at"), ("the hospital cafeteria", "in at"), ("Terminal 2", "at")],
    [("the Willow Room", "in"), ("the rooftop terrace", "on at"), ("Room 118", "in"),
     ("Microsoft Teams", "on over"), ("the Golden Dragon", "at"), ("Lab 4", "in at"),
     ("the community center", "at"), ("27 Elm Avenue", "at"), ("Pier 39", "at"),
     ("the atrium", "in"), ("Bistro Margaux", "at"), ("the north lobby", "in at")])
ACTIVITIES = (  # noun phrases (with their article where they take one)
    ["lunch", "coffee", "dinner", "a meeting", "a call", "a quick sync", "the weekly standup",
     "a planning session", "the budget review", "a 1:1", "an interview", "a dentist appointment",
     "a study session", "yoga", "the project kickoff", "a design review", "drinks", "a workshop",
     "the board meeting", "a catch-up", "brunch", "the team retro", "a demo", "a training session"],
    ["a brainstorm", "the quarterly review", "a client call", "breakfast", "a code review",
     "the sprint planning", "a tutoring session", "a site visit"])
DISTRACTORS = (  # sentences with other numbers and words that are no field
    ["Please bring the 3 printed copies.", "It's about the Q3 numbers.", "Budget is around $250.",
     "We'll go through items 1 to 4 of the agenda.", "Don't forget slides 12-15.",
     "Ticket #4471 is the main topic.", "I'll share version 2.3 beforehand.",
     "There will be snacks.", "Let me know if that doesn't work.", "Thanks!",
     "Parking is free after 2 hours, by the way.", "We need to decide on the 5 candidates.",
     "Reply by email if you can't make it.", "It's the follow-up to last month's meeting."],
    ["Page 7 of the report has the details.", "We expect about 12 people.",
     "The invoice total was $1,480.", "Looking forward to it."])
OPENERS = (
    ["", "", "", "Hi! ", "Hey, ", "Quick note: ", "FYI: ", "Reminder: ", "Hello all, ", "Heads up: ",
     "Just confirming: ", "Dear team, ", "Hi everyone, ", "Good news: "],
    ["Greetings, ", "Morning! ", "Hi folks, "])


def pick(rng, pools, test):
    """A choice from the training pool, or (test, with probability HOLDOUT_P) the held-out one."""
    train, held = pools
    return rng.choice(held if test and rng.random() < HOLDOUT_P else train)


# ---- the structured event and the answer computed from it ----

def next_weekday(today, wd):
    """The first day strictly after today that is weekday wd (0 = Monday)."""
    return today + dt.timedelta(days=(wd - today.weekday() - 1) % 7 + 1)


def resolve_date(today, spec):
    k = spec["kind"]
    if k == "today":
        return today
    if k == "tomorrow":
        return today + dt.timedelta(days=1)
    if k == "in_days":
        return today + dt.timedelta(days=spec["n"])
    if k == "weekday":
        return next_weekday(today, spec["weekday"])
    if spec.get("year"):
        return dt.date(spec["year"], spec["month"], spec["day"])
    d = dt.date(today.year, spec["month"], spec["day"])
    return d if d >= today else dt.date(today.year + 1, spec["month"], spec["day"])


def answer_of(ev):
    today = dt.date.fromisoformat(ev["today"])
    obj = {"date": resolve_date(today, ev["date"]).isoformat(),
           "start": "%02d:%02d" % (ev["hour"], ev["minute"]),
           "duration_min": ev["duration"],
           "attendees": list(ev["attendees"]),
           "location": ev["location"]}
    return json.dumps(obj, ensure_ascii=False)


def user_turn(ev, message):
    today = dt.date.fromisoformat(ev["today"])
    return "Today is %s, %s. %s\nMessage: %s" % (WEEKDAYS[today.weekday()], today.isoformat(),
                                                   INSTRUCTION, message)


def draw_event(rng, test):
    today = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))
    r = rng.random()
    if r < 0.40:
        target = today + dt.timedelta(days=rng.randrange(0, 330))
        if target.month == 2 and target.day == 29:
            target -= dt.timedelta(days=1)
        with_year = rng.random() < 0.25
        date = {"kind": "absolute", "month": target.month, "day": target.day,
                "year": target.year if with_year else None}
    elif r < 0.50:
        date = {"kind": "today"}
    elif r < 0.62:
        date = {"kind": "tomorrow"}
    elif r < 0.74:
        date = {"kind": "in_days", "n": rng.choice([2, 2, 3, 3, 4, 5, 6, 7, 10, 14, 21])}
    else:
        date = {"kind": "weekday", "weekday": rng.randrange(7)}
    if rng.random() < 0.08:
        hour, minute = 12, 0
    else:
        hour = rng.choice([7, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 19, 20, 21])
        minute = rng.choice([0, 0, 0, 0, 0, 15, 30, 30, 30, 45, 5, 10, 20, 40, 50])
    duration = None
    if rng.random() < 0.6:
        duration = rng.choice([15, 20, 30, 30, 45, 45, 60, 60, 60, 75, 90, 90, 120, 120, 150, 180])
    n_att = rng.choices([0, 1, 2, 3], weights=[25, 35, 25, 15])[0]
    attendees = []
    while len(attendees) < n_att:
        name = pick(rng, NAMES, test)
        first = name.split()[0]
        if all(a.split()[0] != first for a in attendees):
            attendees.append(name)
    location = prep = None
    if rng.random() < 0.7:
        location, preps = pick(rng, LOCATIONS, test)
        prep = rng.choice(preps.split())
    return {"today": today.isoformat(), "date": date, "hour": hour, "minute": minute,
            "duration": duration, "attendees": attendees, "location": location, "prep": prep}


# ---- surface forms ----

def ordinal(n):
    suf = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return "%d%s" % (n, suf)


def date_phrase(rng, ev, test):
    """(with its preposition, bare) phrases for the date, and the style used."""
    d = ev["date"]
    k = d["kind"]
    if k == "today":
        s = rng.choice(["today", "today", "later today"])
        return s, s, "today"
    if k == "tomorrow":
        return "tomorrow", "tomorrow", "tomorrow"
    if k == "in_days":
        n = d["n"]
        styles = ["in %d days" % n, "in %s days" % NUMWORDS[n]]
        if n == 7:
            styles.append("in a week")
        if n == 14:
            styles.append("in two weeks")
        if test and rng.random() < HOLDOUT_P:
            s = "%s days from now" % rng.choice([str(n), NUMWORDS[n]])
            return s, s, "in_days_from_now"
        s = rng.choice(styles)
        return s, s, "in_days"
    if k == "weekday":
        w = WEEKDAYS[d["weekday"]]
        style = rng.choice(["on", "this", "next", "bare"])
        if style == "bare":
            return "on " + w, w, "weekday_on"
        s = ("on " if style == "on" else style + " ") + w
        return s, s, "weekday_" + style
    mon, day, year = MONTHS[d["month"] - 1], d["day"], d["year"]
    if year:
        style = rng.choice(["iso", "iso", "mdy", "dmy"])
        s = {"iso": "%04d-%02d-%02d" % (year, d["month"], day),
             "mdy": "%s %d, %d" % (mon, day, year),
             "dmy": "%d %s %d" % (day, mon, year)}[style]
        return "on " + s, s, "abs_" + style
    if test and rng.random() < HOLDOUT_P:
        s = "%s %s" % (ordinal(day), mon)
        return "on the " + s if rng.random() < 0.5 else "on " + s, s, "abs_ordinal_month"
    style = rng.choice(["md", "mabbr", "dm", "dabbr", "the_of", "mord"])
    s = {"md": "%s %d" % (mon, day), "mabbr": "%s %d" % (mon[:3], day), "dm": "%d %s" % (day, mon),
         "dabbr": "%d %s" % (day, mon[:3]), "the_of": "the %s of %s" % (ordinal(day), mon),
         "mord": "%s %s" % (mon, ordinal(day))}[style]
    return "on " + s, s, "abs_" + style


def clock(rng, hour, minute, test, family=None):
    """A time of day in one of several spellings; family keeps two times alike."""
    if hour == 12 and minute == 0 and family in (None, "noon") and rng.random() < 0.6:
        return rng.choice(["noon", "12 noon", "midday"]), "noon"
    h12 = hour % 12 or 12
    if family is None:
        fams = ["pm", "pm", "p.m.", "PM", "24h", "24h"]
        if test and rng.random() < HOLDOUT_P:
            fams = ["daypart"]
        family = rng.choice(fams)
    if family == "noon":
        family = "pm"
    mm = "" if minute == 0 and rng.random() < 0.8 else ":%02d" % minute
    if family == "daypart" and minute == 0:
        part = "in the morning" if hour < 12 else "in the afternoon" if hour < 18 else "in the evening"
        return "%d %s" % (h12, part), family
    if family == "24h" or family == "daypart":
        return "%02d:%02d" % (hour, minute) if rng.random() < 0.7 else "%d:%02d" % (hour, minute), "24h"
    ap = {"pm": "am" if hour < 12 else "pm", "p.m.": "a.m." if hour < 12 else "p.m.",
          "PM": "AM" if hour < 12 else "PM"}[family]
    sep = "" if family == "pm" and rng.random() < 0.6 else " "
    return "%d%s%s%s" % (h12, mm, sep, ap), family


def duration_phrase(rng, m, test):
    """'for ...' phrases for m minutes (m > 0), and an adjective form or None."""
    h, r = divmod(m, 60)
    forms = ["%d minutes" % m]
    if m < 60:
        forms += ["%d min" % m]
        if m == 30:
            forms += ["half an hour", "30 minutes"]
        if m == 15:
            forms += ["a quarter of an hour"]
    elif r == 0:
        forms = ["%d hour%s" % (h, "s" if h > 1 else ""), "%s hour%s" % (NUMWORDS[h], "s" if h > 1 else "")]
        forms += ["an hour", "one hour"] if h == 1 else ["%d minutes" % m]
    elif r == 30:
        forms += ["%s.5 hours" % h, "%d hour%s %d minutes" % (h, "s" if h > 1 else "", r)]
        forms += ["an hour and a half"] if h == 1 else ["%s and a half hours" % NUMWORDS[h]]
    else:
        forms += ["%d hour%s %d minutes" % (h, "s" if h > 1 else "", r)]
        forms += ["an hour and %d minutes" % r] if h == 1 else []
    if test and rng.random() < HOLDOUT_P:
        if m % 60 == 0:
            forms = ["%dh" % h]
        else:
            forms = ["%d mins" % m, "%dh%02d" % (h, r) if h else "%d mins" % m]
    s = rng.choice(forms)
    adj = None
    if m < 60 or r == 0:
        adj = "%d-minute" % m if m < 60 else ("one-hour" if h == 1 else "%s-hour" % NUMWORDS[h])
    return "for " + s, adj


def name_list(rng, names):
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return "%s and %s" % tuple(names)
    oxford = "," if rng.random() < 0.4 else ""
    return "%s%s and %s" % (", ".join(names[:-1]), oxford, names[-1])


def render(rng, ev, test):
    """The message for an event, and the parts that went into it."""
    act = pick(rng, ACTIVITIES, test)
    date_p, date_bare, date_style = date_phrase(rng, ev, test)
    t, fam = clock(rng, ev["hour"], ev["minute"], test)
    time_p = "at " + t
    dur_p = dur_adj = None
    used_range = False
    if ev["duration"]:
        dur_p, dur_adj = duration_phrase(rng, ev["duration"], test)
        end = ev["hour"] * 60 + ev["minute"] + ev["duration"]
        if end < 23 * 60 and rng.random() < 0.2:
            t2, _ = clock(rng, end // 60, end % 60, False, fam if fam != "daypart" else "24h")
            time_p = "from %s to %s" % (t, t2) if rng.random() < 0.6 else "from %s until %s" % (t, t2)
            dur_p = dur_adj = None
            used_range = True
    att = ev["attendees"]
    att_p = None
    if att:
        att_p = ("w/ " if rng.random() < 0.1 else "with ") + name_list(rng, att)
    loc_p = "%s %s" % (ev["prep"], ev["location"]) if ev["location"] else None
    if dur_adj and rng.random() < 0.25 and not act.startswith("the "):
        # "a 45-minute call": the duration moves into the activity
        noun = act.split(" ", 1)[1] if act.split()[0] in ("a", "an") else act
        act = ("an " if dur_adj[0] in "aeiou" else "a ") + dur_adj + " " + noun
        dur_p = None
    when = [date_p, time_p]
    if rng.random() < 0.3:
        when.reverse()
    mods = [" ".join(when)] + [p for p in (att_p, loc_p, dur_p) if p]
    first = mods[0]
    rest = mods[1:]
    rng.shuffle(rest)
    # the when-phrase goes first, last or in between, the rest in random order
    pos = rng.randrange(len(rest) + 1)
    mods = rest[:pos] + [first] + rest[pos:]
    body = " ".join(mods)
    opener = pick(rng, OPENERS, test)
    frames_train = [
        lambda: "%s %s." % (cap(act), body),
        lambda: "Let's have %s %s." % (act, body),
        lambda: "Can we do %s %s?" % (act, body),
        lambda: "I've booked %s %s." % (act, body),
        lambda: "This is to confirm that %s will take place %s." % (act, body),
        lambda: "%s? %s works for me." % (cap(act), cap(body)),
        lambda: "Scheduling %s %s, if that's okay." % (act, body),
        lambda: "We're on for %s %s." % (act, body),
        lambda: "Please add %s to the calendar: %s." % (act, body),
        lambda: "reminder that we have %s %s" % (act, body),
    ]
    frames_test = [
        lambda: "Pencil me in for %s %s." % (act, body),
        lambda: "Save the date: %s, %s." % (act, body),
        lambda: "Would it suit you to have %s %s?" % (act, body),
    ]
    # frames that take the parts apart
    if att and not used_range and rng.random() < 0.15:
        who = name_list(rng, att)
        verb = "is" if len(att) == 1 else "are"
        parts = [cap(act) + " " + " ".join(when) + (" " + dur_p if dur_p else "") + "."]
        if loc_p:
            parts.append("We'll meet %s." % loc_p)
        parts.append(rng.choice(["%s %s joining." % (who, verb), "%s %s coming too." % (who, verb),
                                 "Invited: %s." % who]))
        msg = " ".join(parts)
        frame = "split"
    elif rng.random() < 0.08:
        fields = ["What: %s" % act.split(" ", 1)[1] if act.split()[0] in ("a", "an") else "What: " + act,
                  "When: %s, %s" % (date_bare, t if not used_range else time_p[5:])]
        if dur_p:
            fields.append("How long: %s" % dur_p[4:])
        if att:
            fields.append("Who: %s" % ", ".join(att))
        if loc_p:
            fields.append("Where: %s" % loc_p)
        msg = " | ".join(fields)
        frame = "fields"
    else:
        pool = frames_test if test and rng.random() < HOLDOUT_P else frames_train
        i = rng.randrange(len(pool))
        msg = pool[i]()
        frame = ("test%d" if pool is frames_test else "train%d") % i
    msg = opener + (lower_first(msg) if opener.endswith(", ") else cap(msg))
    msg = msg.replace(".m..", ".m.").replace(".m.?", ".m.?")
    if rng.random() < 0.25:
        d = pick(rng, DISTRACTORS, test)
        if msg[-1] not in ".?!":
            msg += "."
        msg = d + " " + msg if rng.random() < 0.3 else msg + " " + d
    return msg, {"activity": act, "date_style": date_style, "time_family": fam, "frame": frame,
                 "time_range": used_range}


def cap(s):
    return s[:1].upper() + s[1:]


def lower_first(s):
    """Lower-case the first letter unless it starts a name, a place or 'I'."""
    w = s.split(" ", 1)[0]
    if w in ("I've", "I") or w.endswith(":") or not w[:1].isupper() or w[1:2].isupper():
        return s
    return s[:1].lower() + s[1:]


def example(rng, test):
    ev = draw_event(rng, test)
    msg, how = render(rng, ev, test)
    return {"event": ev, "message": msg, "how": how, "user": user_turn(ev, msg), "answer": answer_of(ev)}


def make_split(seed, n, test, avoid=()):
    rng = random.Random(seed)
    out, seen = [], set(avoid)
    while len(out) < n:
        ex = example(rng, test)
        if ex["message"] in seen:
            continue
        seen.add(ex["message"])
        out.append(ex)
    return out


def chat_line(ex):
    return json.dumps({"messages": [{"role": "user", "content": ex["user"]},
                                    {"role": "assistant", "content": ex["answer"]}]}, ensure_ascii=False)


def task_line(ex, i, shots=()):
    item = {"id": "events-test-%03d" % i, "type": "gen"}
    if shots:
        msgs = []
        for s in shots:
            msgs += [{"role": "user", "content": s["user"]}, {"role": "assistant", "content": s["answer"]}]
        item["messages"] = msgs + [{"role": "user", "content": ex["user"]}]
    else:
        item["chat"] = True
        item["prompt"] = ex["user"]
    item.update({"answer": ex["answer"], "score": "json_fields", "stop": ["\n"], "max_tokens": MAX_TOKENS})
    return json.dumps(item, ensure_ascii=False)


def pick_shots(train):
    """Three training examples that between them show a null duration and
    location, a weekday, several attendees and no attendees."""
    def first(cond, taken):
        return next(e for e in train if cond(e) and e not in taken)
    a = first(lambda e: e["event"]["duration"] is None and e["event"]["location"] is None
              and e["event"]["attendees"], [])
    b = first(lambda e: e["event"]["date"]["kind"] == "weekday" and len(e["event"]["attendees"]) >= 2
              and e["event"]["duration"] and e["event"]["location"], [a])
    c = first(lambda e: e["event"]["date"]["kind"] == "absolute" and not e["event"]["attendees"]
              and e["event"]["location"], [a, b])
    return [a, b, c]


def generate(seed=20261207, n_train=3000, n_val=200, n_test=200):
    test = make_split(seed * 3 + 2, n_test, True)
    avoid = {e["message"] for e in test}
    train = make_split(seed * 3, n_train, False, avoid)
    avoid |= {e["message"] for e in train}
    val = make_split(seed * 3 + 1, n_val, False, avoid)
    return train, val, test


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--test", type=int, default=200)
    a = ap.parse_args()
    train, val, test = generate(a.seed, a.train, a.val, a.test)
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "train.jsonl"), [chat_line(e) for e in train])
    write(os.path.join(a.out, "val.jsonl"), [chat_line(e) for e in val])
    write(os.path.join(a.out, "test.jsonl"), [chat_line(e) for e in test])
    write(os.path.join(a.out, "events_test.jsonl"), [task_line(e, i) for i, e in enumerate(test)])
    shots = pick_shots(train)
    write(os.path.join(a.out, "events_test_3shot.jsonl"), [task_line(e, i, shots) for i, e in enumerate(test)])
    print("gen_events: %d train, %d val, %d test examples in %s" % (len(train), len(val), len(test), a.out))


if __name__ == "__main__":
    main()
