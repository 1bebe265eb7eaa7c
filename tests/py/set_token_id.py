#!/usr/bin/env python3
"""Points a tokenizer.ggml.*_token_id key of a GGUF file at the token with a
given text, in place (the `gguf` package's writable reader): a model whose
special id lies after tokens that trimming drops, so that remapping it is
tested. usage: set_token_id.py FILE.gguf KEY PIECE"""
import sys

from gguf import GGUFReader

path, key, piece = sys.argv[1:4]
r = GGUFReader(path, "r+")
tokens = r.fields["tokenizer.ggml.tokens"]
ids = [i for i, k in enumerate(tokens.data) if bytes(tokens.parts[k]).decode() == piece]
if not ids:
    sys.exit(f"set_token_id: no token {piece!r}")
r.fields[key].parts[-1][0] = ids[0]
print(f"set_token_id: {key} = {ids[0]} ({piece})")
