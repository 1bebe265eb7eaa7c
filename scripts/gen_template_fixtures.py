#!/usr/bin/env python3
"""Golden outputs for the chat-template interpreter (tests/test_jinja.c).

Renders every tests/fixtures/templates/*.jinja with the jinja2 package the way
HF transformers renders chat templates (ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks, the loopcontrols extension, transformers' own
tojson filter, raise_exception and strftime_now globals) over a set of
conversations, plus small expression/whitespace templates, and writes
tests/fixtures/templates/expected.json. strftime_now is pinned to NOW so the
output is reproducible; the C test passes the same time.

Run with the python that scripts/test_venv.sh prints (it has jinja2):
    $(scripts/test_venv.sh) scripts/gen_template_fixtures.py
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "tests", "fixtures", "templates")
NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' filter: json.dumps without jinja2's HTML escaping
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return NOW.strftime(fmt)


def make_env():
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()

# family -> (bos_token, eos_token), as the models' tokenizer configs name them
TOKENS = {
    "gemma3": ("<bos>", "<eos>"),
    "llama3.2": ("<|begin_of_text|>", "<|eot_id|>"),
    "qwen2.5": ("<|endoftext|>", "<|im_end|>"),
    "qwen2.5-coder-0.5b": ("<|endoftext|>", "<|im_end|>"),
    "phi3-mini": ("<s>", "<|endoftext|>"),
    "phi3.5-mini": ("<s>", "<|endoftext|>"),
    "phi4-mini": ("<|endoftext|>", "<|endoftext|>"),
    "mistral-v0.1": ("<s>", "</s>"),
    "mistral-v0.3": ("<s>", "</s>"),
    "mistral-nemo": ("<s>", "</s>"),
    "smollm2": ("<|im_start|>", "<|im_end|>"),
}

SYS = {"role": "system", "content": "You are a terse assistant."}
U1 = {"role": "user", "content": "What is the capital of France?"}
A1 = {"role": "assistant", "content": "Paris."}
U2 = {"role": "user", "content": "And of Germany?"}
UNI = {"role": "user", "content": "  Grüße aus Köln — 日本語のテキスト 🌍\n\tTabs, \"quotes\" and \\backslashes\\  \n"}
AUNI = {"role": "assistant", "content": "Ça va ? «Oui» ✓  "}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TOOL_CALL = {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call12345", "type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
               "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"}

CONVERSATIONS = [
    ("user", [U1], True),
    ("user_nogen", [U1], False),
    ("system_user", [SYS, U1], True),
    ("multi_turn", [SYS, U1, A1, U2], True),
    ("assistant_last", [U1, A1], False),
    ("unicode", [SYS, UNI, AUNI, U2], True),
    ("roles_not_alternating", [U1, U2], True),
    ("tools", [SYS, U1], True, [WEATHER_TOOL]),
    ("tool_call_and_result", [U1, TOOL_CALL, TOOL_RESULT], True, [WEATHER_TOOL]),
]

# Small templates that pin down single constructs (rendered with VARS).
VARS = {"items": ["x", "y", "z"], "s": "  Hello World  ", "n": 7, "f": 2.5, "zero": 0, "d": {"b": 2, "a": 1},
        "nothing": None, "t": True, "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                                             {"role": "user", "content": "bye"}],
        "nested": {"list": [1, 2.0, "three", None, True, {"k": [False]}], "uni": "é\u00a0\n\"\\"}}
EXPRESSIONS = [
    "{{ s | trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}",
    "{{ s | upper }} {{ s | lower }} {{ 'hello wORLD-foo bar' | title }} {{ 'hello wORLD-foo' .title() }} {{ 'aBC' | capitalize }}",
    "{{ items | length }} {{ s | length }} {{ d | length }} {{ items | first }} {{ items | last }} {{ items | join(', ') }}",
    "{{ items[1:] }} {{ items[::-1] }} {{ items[:-1] }} {{ s[2:7] }} {{ s[::-1] }} {{ items[-1] }} {{ 'héllo'[1] }}",
    "{{ 7 % 3 }} {{ -7 % 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - -2 }}",
    "{{ f * 2 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0 }} {{ 3 / 4 }} {{ 1e-5 }} {{ 123456789.125 }}",
    "{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ 'x' + 'y' }}",
    "{{ n is number }} {{ s is string }} {{ d is mapping }} {{ items is sequence }} {{ nothing is none }} {{ t is true }} {{ zero is false }} {{ undefined_thing is defined }} {{ n is defined }} {{ s is iterable }} {{ n is iterable }} {{ n is odd }} {{ n is divisibleby 7 }}",
    "{{ 'x' in items }} {{ 'q' not in items }} {{ 'ell' in 'hello' }} {{ 'a' in d }} {{ n > 3 and n < 10 }} {{ not t }} {{ nothing or 'fallback' }} {{ zero and 'never' }} {{ 1 < n < 10 }}",
    "{{ d }} {{ items }} {{ nothing }} {{ t }} {{ nested.list }} {{ [\"it's\"] }}",
    "{{ nested | tojson }}\n{{ nested | tojson(indent=2) }}\n{{ d | tojson(sort_keys=true) }}\n{{ 'é\"' | tojson }} {{ [] | tojson }} {{ {} | tojson(indent=4) }}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k, v in d | items %}{{ k }}{{ v }}{% endfor %} {{ d.get('a') }} {{ d.get('zz', 'no') }} {{ d.get('zz') }} {{ d.keys() | list }}",
    "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{% if not loop.last %},{% endif %}{% endfor %}",
    "{% for x in [] %}never{% else %}empty{% endfor %} {% for x in items if x != 'y' %}{{ x }}{{ loop.index }}{% endfor %}",
    "{% for x in items %}{% if x == 'y' %}{% continue %}{% endif %}{{ x }}{% if x == 'x' %}{% endif %}{% endfor %}|{% for x in items %}{% if x == 'y' %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% set ns = namespace(count=0, found=false) %}{% for m in msgs %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}",
    "{% set x = 1 %}{% for i in items %}{% set x = x + 1 %}{% endfor %}{{ x }} {% if true %}{% set y = 5 %}{% endif %}{{ y }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }} {{ msgs | rejectattr('role', 'equalto', 'user') | list | length }} {{ items | select('ne', 'y') | list }} {{ [3, 1, 3] | unique | list }} {{ msgs | map(attribute='role') | first }}",
    "{{ undefined_thing | default('dflt') }} {{ '' | default('e', true) }} {{ '42' | int + 1 }} {{ '3.7' | int }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 7 | string + '!' }} {{ -3 | abs }}",
    "{{ 'a,b,,c'.split(',') }} {{ '  a  b c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'aXbX'.replace('X', '-') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }}",
    "{{ 'yes' if t else 'no' }} {{ 'yes' if nothing else 'no' }} [{{ 'only' if nothing }}]",
    "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }}",
    "{% set block %}inner {{ n }}{% endset %}[{{ block }}] {% raw %}{{ not rendered }}{% endraw %} {# a comment #}end",
    "{{ range(3) | list }} {{ range(1, 7, 2) | join(',') }} {% for i in range(2) %}{{ i }}{% endfor %} {{ 'abc' | list }}",
    "{{ messages_missing is not defined }} {{ nested.uni }} {{ nested['list'][5]['k'][0] }} {{ nested.list.0 }}",
    # whitespace control, trim_blocks and lstrip_blocks
    "line1\n{% if true %}\n  inside\n{% endif %}\nline2\n    {% if true %}indented{% endif %}\n  {# comment #}\nend",
    "a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n  e {{ 'f' }}\n{{ 'g' }}\n",
    "  {%+ if true %}keep{% endif %}\n{% if true +%}\nnl kept{% endif %}",
    "x {% if true %}\n y{% endif %} z\n\t{% for i in [1,2] %}\n\t[{{ i }}]\n\t{% endfor %}\ndone\n",
    "{% for m in msgs %}\n    {{ m.role }}: {{ m.content }}\n{% endfor %}",
    "{{ \"a\\nb\\t\\\"c\\\" \\\\ \\u00e9 \\x41\" }} {{ 'it''s' }} {{ 'adj' 'acent' }}",
    "{%- set x = [1, 2, 3] -%}\n{{- x | length -}}\n{%- if x | length > 2 %} many{% endif %}",
    # edge cases: comments and raw blocks, nested loop variables, slices, tests on odd types, Python string
    # methods, undefined values, float arithmetic, lazily failing filters, unicode case mapping
 "a\n  {# c #}\n  b {# c2 #}\n{%- raw %} x {% endraw -%}\n  y",
 "{% for a in items %}{% for b in items %}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}{% endfor %}",
 "{{ items[1:3] }}{{ items[::-2] }}{{ [1,2,3][-5:] }}{{ [1,2,3][5:] }}{{ 'abcdef'[-2:1:-1] }}",
 "{{ d is sequence }}{{ d is iterable }}{{ nothing is iterable }}{{ 1.0 is integer }}{{ true is number }}{{ 3 is float }}",
 "{{ 'a b  c'.split(' ') }}{{ ' x '.split(None) }}{{ 'a-b-c'.split('-', 1) }}",
 "{{ undefined_x | length }}{{ undefined_x | default(5) }}{{ undefined_x is none }}{% for x in undefined_x %}n{% else %}e{% endfor %}",
 "{{ '%' }}{{ 'x' ~ 3.0 }}{{ 10 / 4 }}{{ 10 // 4.0 }}{{ -7 % 2.5 }}{{ 2 ** -1 }}{{ 1e300 * 1e10 }}",
 "   {%- if true %}\n  x\n   {% endif -%}\n   y",
 "{% if true %}a{% elif false %}b{% else %}c{% endif %}{% if false %}a{% elif true %}b{% else %}c{% endif %}{% if false %}a{% elif false %}b{% else %}c{% endif %}",
 "{{ msgs[0] == {'role': 'user', 'content': 'hi'} }}{{ msgs[0] != msgs[1] }}{{ [1, 2] < [1, 3] }}{{ 'b' > 'a' }}",
 "{%- for m in msgs -%}\n  {{- m.role -}}\n  {%- if not loop.last %}, {% endif -%}\n{%- endfor %}",
 "{{ \"it's\" }} {{ ['a\"b', \"c'd\", 'e\\'f\"g'] }} {{ {'k': none, 'j': [true, 1.5]} }}",
 "{% set a = [1,2] %}{% set b = a + [3] %}{{ a }}{{ b }}{{ a | join }}{{ b | sum if false else 'ns' }}",
 "{{ msgs | map(attribute='role') | list }}{{ msgs | selectattr('content') | list | length }}{{ items | map('upper') | join }}",
 "{% macro m(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{% for i in [1] %}{{ m(i) }}{% endfor %}{{ m(b=5, a=0) }}",
 "{{ 'ABC' | lower | capitalize }} {{ 'x' | upper ~ 'y' }} {{ 'hello world' | title }} {{ 'ÉCOLE' | lower }}",
 "{{ none | string }}{{ 0.5 | int }}{{ '12abc' | int(7) }}{{ true + 1 }}{{ [1,2] | first }}",
 "{% set ns = namespace(a=[]) %}{% set ns.a = ns.a + [1] %}{{ ns.a }}{{ ns.b is defined }}",
 "{{ s[1] }}{{ s[-1] }}{{ items[10] is defined }}{{ 'x'.startswith('') }}",
 "x{% for i in [1,2,3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% else %}E{% endfor %}y",
    # scoping: a loop body's assignments last one iteration; macros see the template's variables
 "{% for i in [1,2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}",
 "{% set x = 0 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}",
 "{% macro m() %}{{ late }}{% endmacro %}{% set late = 'L' %}{{ m() }}",
 "{% for a in [1,2] %}{% set outer = loop %}{% for b in [3] %}{{ outer.index }}{{ loop.index }}{% endfor %}{% endfor %}",
 "{% for i in [1] %}{% set y = 1 %}{% endfor %}{{ y is defined }}",
 "{% set items = items + ['w'] %}{% for x in items %}{{ x }}{% endfor %}",
 "{% for m in msgs %}{% set m = 'over' %}{{ m }}{% endfor %}{{ m is defined }}",
 "{{ loop is defined }}{% for i in [1] %}{% for j in [2] %}{{ loop.length }}{% endfor %}{{ loop.index }}{% endfor %}",
 "{%- set ns = namespace(x=1) -%}{%- macro inc() -%}{%- set ns.x = ns.x + 1 -%}{%- endmacro -%}{{ inc() }}{{ ns.x }}",
 "{% if true %}{% set z = 3 %}{% endif %}{% for i in [1] %}{{ z }}{% set z = 4 %}{{ z }}{% endfor %}{{ z }}",
    # reprs of non-printable characters, and what jinja2 refuses (our interpreter must refuse it too)
    "{{ nested }} {{ [nested.uni, '\\u2028x\\u200b\\xad'] }}",
    "{{ 1 is number is true }}",
    "{{ undefinedv | int }}",
    "{{ x is string if true else 1 }}",
]


def render(src, ctx):
    try:
        return {"output": ENV.from_string(src).render(**ctx)}
    except TemplateError as e:
        return {"error": "raise_exception", "message": str(e)}
    except Exception as e:  # what jinja2 rejects, our interpreter must reject too
        return {"error": type(e).__name__, "message": str(e)}


def main():
    out = {"now": [NOW.year, NOW.month, NOW.day, NOW.hour, NOW.minute, NOW.second],
           "jinja2_version": jinja2.__version__, "templates": [], "expressions": []}
    for fname in sorted(os.listdir(DIR)):
        if not fname.endswith(".jinja"):
            continue
        family = fname[:-len(".jinja")]
        with open(os.path.join(DIR, fname), encoding="utf-8") as f:
            src = f.read()
        bos, eos = TOKENS[family]
        cases = []
        for conv in CONVERSATIONS:
            name, msgs, gen = conv[:3]
            tools = conv[3] if len(conv) > 3 else None
            ctx = {"messages": msgs, "tools": tools, "documents": None, "add_generation_prompt": gen,
                   "bos_token": bos, "eos_token": eos}
            cases.append({"name": name, "context": ctx, **render(src, ctx)})
        out["templates"].append({"family": family, "file": fname, "cases": cases})
    for src in EXPRESSIONS:
        out["expressions"].append({"template": src, **render(src, VARS)})
    out["expression_vars"] = VARS
    path = os.path.join(DIR, "expected.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    n = sum(len(t["cases"]) for t in out["templates"])
    print(f"wrote {path}: {len(out['templates'])} templates, {n} cases, {len(EXPRESSIONS)} expressions",
          file=sys.stderr)


if __name__ == "__main__":
    main()
