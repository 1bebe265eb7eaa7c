#!/usr/bin/env python3
"""Builds tasks/kjv_endings.jsonl, a 4-way multiple-choice task whose ground
truth is the text itself: given the first half of a King James Bible verse,
pick its true second half among four, the other three being second halves of
randomly drawn verses from other books.

Input: kjv.txt as scripts/fetch_data.sh makes it (chapter headings "Book N",
then one verse per line). Standard library only; the seed is fixed, so the
output is the same on every run (the test suite does not depend on it).

    python3 scripts/gen_kjv_task.py [KJV_TXT] [OUT_JSONL]
"""
import json
import os
import random
import re
import sys

SEED = 20261125
N_ITEMS = 250
MIN_WORDS = 12     # shorter verses give too little context
MAX_WORDS = 40     # keeps every item well inside a 512-token context
HEADING = re.compile(r"^((?:[1-3] )?[A-Z][A-Za-z ]+?) (\d+)$")


def read_verses(path):
    verses = []  # (book, chapter, verse number, text)
    book, chap, num = None, 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = HEADING.match(line)
            if m:
                book, chap, num = m.group(1), int(m.group(2)), 0
                continue
            num += 1
            verses.append((book, chap, num, line))
    return verses


def split_verse(text):
    words = text.split(" ")
    cut = len(words) // 2
    return " ".join(words[:cut]), " " + " ".join(words[cut:])


def main():
    data = os.environ.get("SLM_DATA", os.path.expanduser("~/.cache/slm/data"))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(data, "kjv.txt")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tasks", "kjv_endings.jsonl")
    verses = [v for v in read_verses(src) if MIN_WORDS <= len(v[3].split(" ")) <= MAX_WORDS]
    if len(verses) < 4 * N_ITEMS:
        sys.exit(f"gen_kjv_task: only {len(verses)} usable verses in {src}")
    rng = random.Random(SEED)
    picked = rng.sample(range(len(verses)), N_ITEMS)
    lines = []
    for idx in picked:
        book, chap, num, text = verses[idx]
        context, ending = split_verse(text)
        endings = {ending}
        choices = [ending]
        while len(choices) < 4:
            other = verses[rng.randrange(len(verses))]
            if other[0] == book:
                continue
            e = split_verse(other[3])[1]
            if e in endings:
                continue
            endings.add(e)
            choices.append(e)
        rng.shuffle(choices)
        lines.append(json.dumps({"type": "mc", "id": f"{book} {chap}:{num}", "context": context,
                                 "choices": choices, "answer": choices.index(ending)},
                                ensure_ascii=False))
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print(f"gen_kjv_task: {len(lines)} items -> {out}")


if __name__ == "__main__":
    main()
