"""Structured output on the real model (issue 17): every schema in
tests/fixtures/grammar/schemas, with several prompts and seeds, sampled at
temperature 1 through `slm run --json-schema`; each output must parse as
JSON and validate against its schema with the independent `jsonschema`
package (formats checked). An output cut short by the token limit is
reported by slm as truncated (exit status 3) and counted as a failure,
except for the schemas that bound nothing (UNBOUNDED: any value, any
object), where a model may legitimately write past any limit: there a
truncated output is counted apart (never as valid).

usage: structured_check.py SLM_BIN MODEL [--seeds N] [--n-predict N] [--only NAME]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import jsonschema

UNBOUNDED = {"any_value", "free_object"}

PROMPTS = [
    "Reply with a JSON value that follows this JSON Schema:\n{schema}",
    "Make up a realistic example record as JSON for this schema. Only JSON.\n{schema}",
]


def chat(user):
    return "<start_of_turn>user\n" + user + "<end_of_turn>\n<start_of_turn>model\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("model")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-predict", type=int, default=256)
    ap.add_argument("--only", default=None)
    ap.add_argument("--pure", action="store_true",
                    help="sample from the whole softmax (top-k 0, top-p 1, min-p 0) instead of slm's default chain")
    a = ap.parse_args()
    a.sampling = ["--top-k", "0", "--top-p", "1", "--min-p", "0"] if a.pure else []
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "..", "fixtures", "grammar", "schemas", "*.json")))
    if a.only:
        files = [f for f in files if os.path.basename(f)[:-5] == a.only]
    n = ok = bad = trunc = trunc_free = 0
    t0 = time.time()
    for f in files:
        name = os.path.basename(f)[:-5]
        schema_text = open(f, encoding="utf-8").read()
        schema = json.loads(schema_text)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        for pi, p in enumerate(PROMPTS):
            prompt = chat(p.format(schema=schema_text.strip()))
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                n += 1
                cmd = [a.bin, "run", "-m", a.model, "-t", "2", "--temp", "1", "--seed", str(seed + 100 * pi),
                       "-n", str(a.n_predict), "--json-schema", f, "-p", prompt] + a.sampling
                r = subprocess.run(cmd, capture_output=True)
                out = r.stdout.decode("utf-8", errors="replace")
                gen = out[len(prompt):] if out.startswith(prompt) else out
                if gen.endswith("\n"):
                    gen = gen[:-1]
                where = f"{name} prompt {pi} seed {seed}"
                if r.returncode == 3:
                    if name in UNBOUNDED:
                        trunc_free += 1
                    else:
                        trunc += 1
                    print(f"TRUNCATED {where}: {gen[:200]!r}")
                    continue
                if r.returncode != 0:
                    bad += 1
                    print(f"FAIL {where}: exit {r.returncode}: {r.stderr.decode()[-300:]}")
                    continue
                try:
                    doc = json.loads(gen)
                    errors = sorted(validator.iter_errors(doc), key=lambda e: e.path)
                    if errors:
                        raise ValueError(errors[0].message)
                    ok += 1
                    if seed == a.first_seed and pi == 0:
                        print(f"ok   {where}: {gen[:120]!r}")
                except Exception as e:  # noqa: BLE001 - report and count every kind of failure
                    bad += 1
                    print(f"INVALID {where}: {e}: {gen[:300]!r}")
    dt = time.time() - t0
    print(f"{len(files)} schemas, {n} outputs: {ok} valid, {bad} invalid, {trunc} truncated, "
          f"{trunc_free} truncated with an unbounded schema ({dt:.0f} s)")
    return 0 if ok == n - trunc_free and n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
