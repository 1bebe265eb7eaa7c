#!/usr/bin/env python3
"""Rescores `slm eval --dump` output independently of slm's C scorer and
checks that slm's printed summary says the same.

  events_rescore.py TASK.jsonl DUMP.jsonl SUMMARY.txt

TASK is the eval task, DUMP what `slm eval --task TASK --dump DUMP` wrote,
SUMMARY its stdout. For every dumped item: exact match (the output and the
answer, stripped of ASCII white space, are equal) and, for "json_fields"
items, each key of the answer object right when the output parses as a JSON
object whose member under that key is equal to the answer's, with JSON types
kept apart (true is not 1; 45 equals 45.0). Output that is not well-formed
UTF-8 counts as unparseable. The exact-match rate, its SE
sqrt(p(1-p)/(n-1)) and each field's accuracy must equal slm's to the printed
4 decimals, and the per-item verdicts in the dump must agree. Exit 1 on any
difference."""
import json
import math
import re
import sys

WS = " \t\n\r\v\f"


def same(a, b):
    """JSON equality with kinds kept apart."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def no_constants(name):
    raise ValueError("not JSON: " + name)


def parse_obj(text):
    try:
        v = json.loads(text, parse_constant=no_constants)
    except ValueError:
        return None
    return v if isinstance(v, dict) else None


def prop(k, n):
    p = k / n if n else 0.0
    return p, (math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else 0.0)


def main():
    task_path, dump_path, summary_path = sys.argv[1:4]
    items = [json.loads(l) for l in open(task_path, encoding="utf-8") if l.strip(" \t\r\n")]
    dump = [json.loads(l) for l in open(dump_path, encoding="utf-8")]
    summary = open(summary_path, encoding="utf-8").read()
    bad = 0
    n_em = 0
    fields = {}   # name -> [right, count], in order of first appearance
    for rec in dump:
        it = items[rec["index"]]
        answers = it.get("answers", [it.get("answer")])
        gen = rec["generated"] if rec["valid_utf8"] else None
        exact = gen is not None and any(gen.strip(WS) == a.strip(WS) for a in answers)
        n_em += exact
        if exact != rec["exact"]:
            print("item %d: exact match %s here, %s in slm" % (rec["index"], exact, rec["exact"]))
            bad += 1
        if it.get("score") == "json_fields":
            truth = json.loads(it["answer"])
            out = parse_obj(gen) if gen is not None else None
            right = 0
            for k, v in truth.items():
                ok = out is not None and k in out and same(v, out[k])
                f = fields.setdefault(k, [0, 0])
                f[0] += ok
                f[1] += 1
                right += ok
            if right != rec["fields_right"]:
                print("item %d: %d fields right here, %d in slm: %r" % (rec["index"], right, rec["fields_right"],
                                                                      rec["generated"]))
                bad += 1
    p, se = prop(n_em, len(dump))
    m = re.search(r"generation \((\d+)\): exact match ([0-9.]+) \+/- ([0-9.]+)", summary)
    want = "generation (%d): exact match %.4f +/- %.4f" % (len(dump), p, se)
    if not m or m.group(0) != want:
        print("summary: slm says %r, rescoring gives %r" % (m.group(0) if m else None, want))
        bad += 1
    for name, (k, n) in fields.items():
        p, se = prop(k, n)
        m = re.search(r"field %s +\((\d+)\): ([0-9.]+) \+/- ([0-9.]+)" % re.escape(name), summary)
        got = (int(m.group(1)), m.group(2), m.group(3)) if m else None
        exp = (n, "%.4f" % p, "%.4f" % se)
        if got != exp:
            print("field %s: slm says %s, rescoring gives %s" % (name, got, exp))
            bad += 1
    print("events_rescore: %d items, exact match %d, %d fields; %s" %
          (len(dump), n_em, len(fields), "all agree" if not bad else "%d differences" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
