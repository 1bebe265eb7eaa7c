#!/usr/bin/env bash
# Creates (once) the Python environment of the independent reference: HF
# transformers + CPU torch (to run Gemma 3 from the GGUF file), PEFT (the LoRA
# reference of the training fixtures) and the `gguf` + numpy stack (block
# dequantization, file writing). Only the scripts that regenerate golden
# fixtures need it; the test suite itself does not.
# Prints the path of its python.
set -euo pipefail
VENV=${SLM_REF_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.cache/ref-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import transformers, torch, gguf, numpy, accelerate, peft' 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'gguf==0.19.0' 'numpy>=2' 'transformers==5.24.0' 'torch==2.15.0' 'peft==0.22.0' accelerate sentencepiece protobuf >&2
fi
echo "$VENV/bin/python"
