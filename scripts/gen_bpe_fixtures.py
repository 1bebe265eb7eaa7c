#!/usr/bin/env python3
"""Writes the byte-level BPE tokenizer fixtures from HF references.

Run with the reference venv (needs the models that scripts/fetch_models_extra.sh
assembles into ~/.cache/slm/models, or $SLM_MODELS):
    $(scripts/ref_venv.sh) scripts/gen_bpe_fixtures.py

Outputs (tests/fixtures/tokenizer/):
  smollm2_vocab.gguf  the tokenizer metadata of SmolLM2-135M-Instruct (vocabulary,
                      token types, merges, special ids, tokenizer.ggml.pre =
                      "smollm"), no tensors: small enough to commit, so the test
                      always has a real byte-level vocabulary.
  bpe.tsv             one encode case a line:
                        vocab TAB pre TAB hex(UTF-8 input) TAB flags TAB ids
                      vocab: "smollm2" (the file above) or "qwen2.5" (the real
                      Qwen2.5-Coder-0.5B model; the test skips those lines when
                      the model is absent). pre: the tokenizer.ggml.pre the test
                      writes into a copy of the vocabulary before loading it
                      (the SmolLM2 vocabulary is run under every pre-tokenizer
                      we support). flags: two digits, add_bos then
                      parse_special. Lines starting with '#' are comments.
  bpe_split.tsv       the pre-tokenizers alone (independent of any vocabulary):
                        pre TAB hex(UTF-8 input) TAB byte lengths of the pieces
                      from HF's pre_tokenize_str on the same pre-tokenizers
                      (comma-separated), for every input above and more.

References (none of them our code):
  qwen2.5 / qwen2: transformers' own GGUF path, AutoTokenizer.from_pretrained(
      dir, gguf_file=...), which builds Qwen2Tokenizer (HF tokenizers BPE with
      Qwen2's split expression) from the file.
  smollm2 / smollm: HF tokenizers built from the file's vocabulary and merges
      with SmolLM2's own tokenizer.json pre-tokenizer: Digits(individual) then
      ByteLevel(use_regex=True, GPT-2's expression). (transformers' GGUF path
      has no mapping for "smollm" and would use GPT-2's split alone.)
  smollm2 / gpt2: HF tokenizers, ByteLevel(use_regex=True).
  smollm2 / llama-bpe, qwen2, tekken, gpt-4o: HF tokenizers with the split
      expressions transformers maps those tokenizer.ggml.pre names to
      (transformers.integrations.gguf.gguf_tokenizer_mapping), isolated, then
      ByteLevel without its own regex; ignore_merges where llama.cpp sets it
      (llama-bpe, tekken).
In every case the control tokens are added as special tokens and the
user-defined ones as plain added tokens, as transformers does for GGUF files;
parse_special=0 maps to HF's split_special_tokens=True. Every case is also
decoded by HF and must give the input back (less the bytes that have no
piece: SmolLM2 lacks 21 of the 256 byte characters, and such bytes are dropped).
"""
import os
import random
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.integrations.gguf import gguf_tokenizer_mapping as gtm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
MODELS = os.environ.get("SLM_MODELS", os.path.expanduser("~/.cache/slm/models"))
QWEN = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SMOL = "smollm2-135m-instruct-q4_1.gguf"

BASE_CASES = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "The quick brown fox jumps over the lazy dog.",
    # contractions, any case
    "I'm sure it's fine, we'll see. They've gone; you'd know. Don't!",
    "IT'S LOUD, WE'LL GO, THEY'VE, I'M, YOU'D, DON'T",
    "rock 'n' roll 'quoted' '' 's 'S",
    "O'Neil's cat",
    # numbers
    "1 12 123 1234 12345 123456 1234567",
    "3.14159 -42 +7 1e-9 0x1F 1,000,000 $19.99 50%",
    "Call 555-0199 at 10:30am on 2024-03-15.",
    "abc123def 4x4 a1b2c3",
    "١٢٣ ٤٥ ²³ ½ Ⅻ ⅷ 𝟙𝟚",
    # code
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
    "if x == 1 && y != 2 || !z:\n    pass  # comment\n",
    '{"key": "value", "n": [1, 2, 3], "ok": true}',
    "std::vector<int> v{1,2,3}; // C++",
    "<div class=\"a\">text</div>",
    "https://example.com/path?q=1&r=two#frag",
    "print(f\"{name!r:>10}\")",
    "x=>x**2 <=> a<<=b >>>= c",
    # whitespace runs and newlines
    "a  b   c    d     e",
    "tab\there\t\tand\t\t\tthere",
    "line1\nline2\n\nline4\n\n\n",
    "windows\r\nline\r\n\r\nend",
    "spaces before newline   \n  after",
    " \n \n\t\n",
    "\n\n\n\n",
    "          ",
    "\t\t\t",
    "mixed \t \t whitespace\u3000ideographic\u00a0nbsp\u2009thin\u0085nel",
    # CJK and other scripts
    "日本語のテキストです。",
    "中文分词测试，包括标点符号！",
    "한국어 문장입니다.",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "\U00020000\U0002A6D6 rare CJK",
    # emoji
    "I ❤️ emoji 😀😃😄 🎉",
    "family: 👨‍👩‍👧‍👦 flags: 🇯🇵🇫🇷 skin: 👍🏽",
    # accents, precomposed and combining
    "café naïve résumé Zürich São Paulo",
    "cafe\u0301 nai\u0308ve",
    "Ångström ÆØÅ æøå ß ẞ",
    # casing (tekken / gpt-4o split at case changes)
    "camelCaseWord HTMLParser getHTTPResponseCode iPhone McDonald",
    "ALLCAPS lowercase Titlecase ǅungla",
    # punctuation runs
    "Wait... what?!?! --- *** ### @@@",
    "....................",
    "((((nested)))) [[x]] {{y}}",
    "'''docstring''' \"\"\"triple\"\"\"",
    # control characters and odd bytes
    "nul\u0000byte del\u007f esc\u001b[0m",
    "soft\u00adhyphen zero\u200bwidth bom\ufeff",
    "private \ue000 plane15 \U000f0000",
    "long s: 'ſ 'ſt Kelvin 'K",
    # bytes SmolLM2 has no piece for (0x04, and the lead byte 0xF1 of plane 4):
    # dropped, by HF without an unknown token as by llama.cpp
    "ctrl\u0004d \U00040000 plane4 a\u0004\u0004b",
]

# Only for the split fixture: shapes where the expressions differ.
SPLIT_CASES = [
    "(hello) [world] {x} <tag> \"quoted\" 'single'",
    "a.b.c a,b;c a:b a/b/c a\\b a-b a_b",
    " 1 12 123 1234 ,123 a123 123a",
    "word\n\nword \n word\r\n\r\nword",
    "x  \n  y\t\n\tz",
    "ab'S cd'LL ef'Ve gh'D 'm",
    "UPPERlower lowerUPPER MiXeD ÀÉÎõü",
    "path/to/file.txt\n/usr/bin/\n",
    "e\u0301\u0302 a\u0308b \u0915\u094d\u0937",
    "\u2028line\u2029para\u000bvt\u000cff",
]

# Literal-token cases (the tokens exist in both vocabularies: SmolLM2 and
# Qwen2 share the ChatML markers).
SPECIAL_CASES = [
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more",
    "<|im_start|><|im_end|>",
    "<|im_start",
    "<|im_start|",
    "<<|im_start|>>",
    " <|im_end|> ",
    "<|endoftext|><|endoftext|>",
]
QWEN_SPECIAL = [
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "a<tool_call>b",
]
SMOL_SPECIAL = ["<filename>a.py<file_sep>x<jupyter_code>1"]


def random_cases(n, seed):
    """Strings drawn from a pool of characters that stress the classes."""
    pool = (list("aZ09 '\t\n\r.,!?-_/\\\"()") + ["  ", "'s", "'LL", "\u00a0", "\u3000", "é", "e\u0301", "ß", "日",
            "本", "😀", "👍🏽", "١", "²", "Ⅻ", "ǅ", "Σ", "ς", "\u0085", "\u2028", "\u200d", "\u0000", "<|im_end|>",
            "<|im_", "12345", "HTTP", "Get"])
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pool) for _ in range(rnd.randint(1, 40))) for _ in range(n)]


def read_vocab(path):
    r = gguf.GGUFReader(path)

    def strs(key):
        f = r.fields.get(key)
        return None if f is None else [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strs("tokenizer.ggml.tokens")
    merges = strs("tokenizer.ggml.merges")
    tf = r.fields["tokenizer.ggml.token_type"]
    types = [int(tf.parts[i][0]) for i in tf.data]
    return r, tokens, merges, types


def hf_bpe(tokens, merges, types, pre):
    """An HF tokenizers BPE over the vocabulary with pre-tokenizer `pre`."""
    split = {"llama-bpe": gtm._LLAMA3_SPLIT, "qwen2": gtm._QWEN2_SPLIT, "tekken": gtm._TEKKEN_SPLIT,
             "gpt-4o": gtm._GPT4O_SPLIT}
    ignore_merges = pre in ("llama-bpe", "tekken")
    vocab = {t: i for i, t in enumerate(tokens)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges],
                              ignore_merges=ignore_merges))
    if pre == "smollm":
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre == "gpt2":
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split[pre]), behavior="isolated"),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, ty in zip(tokens, types) if ty == 3])
    tk.add_tokens([AddedToken(t, normalized=False, special=False) for t, ty in zip(tokens, types) if ty == 4])
    return tk


def encode_hf_tokenizers(tk, text, parse_special):
    tk.encode_special_tokens = not parse_special
    return tk.encode(text, add_special_tokens=False).ids


def split_lengths(tk, text):
    """Byte lengths of the pieces HF's pre-tokenizer cuts text into (its
    last step is ByteLevel, so each piece is spelled in the byte alphabet)."""
    inv = {c: b for b, c in bytes_to_unicode().items()}
    return [len(bytes(inv[c] for c in piece)) for piece, _ in tk.pre_tokenizer.pre_tokenize_str(text)]


def write_vocab_only(reader, dst):
    """The tokenizer keys of `reader`'s file into a GGUF without tensors."""
    w = gguf.GGUFWriter(dst + ".tmp", arch="llama")
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.ggml.") and key != "general.name":
            continue
        vt = field.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            sub = field.types[1]
            if sub == gguf.GGUFValueType.STRING:
                w.add_array(key, [bytes(field.parts[i]).decode("utf-8") for i in field.data])
            else:
                w.add_key_value(key, [field.parts[i][0].item() for i in field.data], vt, sub_type=sub)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_string(key, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(key, field.parts[field.data[0]][0].item(), vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(dst + ".tmp", dst)


def main():
    cases = BASE_CASES + random_cases(40, 6)
    lines = ["# byte-level BPE cases: vocab TAB pre TAB hex(input) TAB flags(add_bos parse_special) TAB ids",
             "# written by scripts/gen_bpe_fixtures.py; references named there (HF transformers / tokenizers)"]
    n = 0

    split_lines = ["# pre-tokenizer splits: pre TAB hex(input) TAB byte lengths of the pieces (HF pre_tokenize_str)",
                   "# written by scripts/gen_bpe_fixtures.py"]
    smol_path = os.path.join(MODELS, SMOL)
    reader, tokens, merges, types = read_vocab(smol_path)
    write_vocab_only(reader, os.path.join(OUT, "smollm2_vocab.gguf"))
    for pre in ("smollm", "gpt2", "llama-bpe", "qwen2", "tekken", "gpt-4o"):
        tk = hf_bpe(tokens, merges, types, pre)
        have = {b for b, c in bytes_to_unicode().items() if c in tk.get_vocab()}
        inv = {c: b for b, c in bytes_to_unicode().items()}
        texts = cases + SPECIAL_CASES + SMOL_SPECIAL
        for text in texts:
            for ps in (0, 1):
                ids = encode_hf_tokenizers(tk, text, ps)
                # HF's decode() replaces broken UTF-8 (a dropped lead byte):
                # compare the pieces' bytes instead
                back = bytes(inv[c] for i in ids for c in tk.id_to_token(i))
                if back != bytes(b for b in text.encode() if b in have):
                    sys.exit(f"smollm2/{pre}: HF does not decode {text!r} back (got {back!r})")
                lines.append(f"smollm2\t{pre}\t{text.encode().hex()}\t0{ps}\t{' '.join(map(str, ids))}")
                n += 1
        for text in cases + SPLIT_CASES + random_cases(150, 7):
            if not text:
                continue
            lens = split_lengths(tk, text)
            if sum(lens) != len(text.encode()):
                sys.exit(f"{pre}: HF pieces of {text!r} do not cover it")
            split_lines.append(f"{pre}\t{text.encode().hex()}\t{','.join(map(str, lens))}")
        # BOS asked for: SmolLM2's file says add_bos_token = false, so none
        # (llama.cpp's add_special; test_bpe checks the other way round)
        assert not reader.fields["tokenizer.ggml.add_bos_token"].parts[-1][0]
        ids = encode_hf_tokenizers(tk, "Hi", 1)
        lines.append(f"smollm2\t{pre}\t{'Hi'.encode().hex()}\t11\t{' '.join(map(str, ids))}")
        n += 1

    qwen = AutoTokenizer.from_pretrained(MODELS, gguf_file=QWEN)
    for text in cases + SPECIAL_CASES + QWEN_SPECIAL:
        for ps in (0, 1):
            ids = qwen(text, add_special_tokens=False, split_special_tokens=not ps)["input_ids"]
            back = qwen.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            if back != text:
                sys.exit(f"qwen2.5: HF does not decode {text!r} back (got {back!r})")
            lines.append(f"qwen2.5\tqwen2\t{text.encode().hex()}\t0{ps}\t{' '.join(map(str, ids))}")
            n += 1

    dst = os.path.join(OUT, "bpe.tsv")
    with open(dst + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(dst + ".tmp", dst)
    print(f"wrote {n} cases to {dst} and {os.path.join(OUT, 'smollm2_vocab.gguf')}")
    dst = os.path.join(OUT, "bpe_split.tsv")
    with open(dst + ".tmp", "w") as f:
        f.write("\n".join(split_lines) + "\n")
    os.replace(dst + ".tmp", dst)
    print(f"wrote {len(split_lines) - 2} split cases to {dst}")


if __name__ == "__main__":
    main()
