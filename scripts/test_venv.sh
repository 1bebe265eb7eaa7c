#!/usr/bin/env bash
# Creates (once) the small Python environment that some tests use as an
# independent client or reader: the `gguf` package (reads back the files
# `slm quantize` writes), jinja2 (renders chat templates), the `openai` client
# (talks to `slm serve`), jsonschema with rfc3339-validator (checks structured
# output, issue 17). No torch: this one is cheap enough for CI.
# Prints the path of its python.
set -euo pipefail
VENV=${SLM_TEST_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.cache/test-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import gguf, numpy, jinja2, openai, jsonschema, rfc3339_validator' 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'gguf==0.19.0' 'numpy>=2' 'jinja2==3.1.6' 'openai>=1.50' \
        'jsonschema>=4.20' 'rfc3339-validator>=0.1.4' >&2
fi
echo "$VENV/bin/python"
