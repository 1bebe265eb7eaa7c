#!/usr/bin/env python3
"""Writes the Gemma 3 tokenizer fixtures from independent references.

Run with the reference venv:
    $(scripts/ref_venv.sh) scripts/gen_tokenizer_fixtures.py [MODEL.gguf]
(default model: $SLM_TEST_MODEL, else ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf)

Outputs (tests/fixtures/tokenizer/):
  gemma3.tsv         one encode case a line: hex of the UTF-8 input, TAB, flags,
                     TAB, space-separated ids. flags = two digits: add_bos then
                     parse_special ("10" = BOS added, control tokens not parsed).
  gemma3_decode.tsv  one decode case a line: space-separated ids, TAB, special
                     (1: control tokens give their text), TAB, hex of the bytes.
Lines starting with '#' are comments.

References and the decisions taken where they disagree
------------------------------------------------------
1. HF transformers (AutoTokenizer.from_pretrained(dir, gguf_file=...), which
   converts the GGUF vocabulary into a `tokenizers` BPE with merges) is run on
   every case: add_special_tokens=add_bos, split_special_tokens=not
   parse_special. Its added tokens are exactly our literally matched ones
   (control tokens "special", user-defined ones not), so this flag mapping is
   the same as llama.cpp's parse_special.
2. SentencePiece itself (the `sentencepiece` package) on a ModelProto built
   from the GGUF pieces, scores and types (BPE, byte_fallback, identity
   normalizer, escape_whitespaces, no dummy prefix), applied to the text left
   between the literally matched tokens. Those are cut out of the raw text
   first, longest first, exactly as llama.cpp's tokenizer_st_partition does
   (user-defined always, control/unknown only with parse_special).

   The two agree everywhere except:
   a. Runs of 32 or more spaces. The GGUF has user-defined space tokens of
      2..31 spaces (ids 138..167). SentencePiece (the original Gemma model)
      and llama.cpp take the longest one first (40 spaces -> 31 + 9, ids
      167 145); HF's converted BPE instead merges ▁ pairs by rank and ends up
      with 16-space pieces (40 -> 16 + 24). llama.cpp documented the same
      finding when it fixed Gemma's tokenization (PR #8228). We follow
      SentencePiece/llama.cpp: the fixture holds the SentencePiece ids.
   b. Literal U+2581 ("▁") characters typed in the text. HF (and the original
      SentencePiece model, whose user-defined space pieces are spelled with
      ▁) read "▁▁" as the 2-space token 138. The GGUF converter rewrote those
      pieces with real spaces and llama.cpp matches them on the raw text, so
      in llama.cpp "▁▁" is two "▁" tokens (236743 236743). We follow llama.cpp,
      the tool users compare with; the fixture has those ids (what
      SentencePiece gives on the GGUF spelling of the pieces).
   Any other disagreement stops the script.

   Other checks made on the references: "\\n" and "\\n\\n" are user-defined
   tokens 107/108 (never merged with text), "\\t" runs too; "\\r" is not a
   piece and falls back to <0x0D>; characters with no piece (rare CJK such as
   U+20000, NUL, private use plane 15) become their UTF-8 bytes as <0xNN>
   tokens; no control or byte token is the concatenation of two pieces, so
   llama.cpp (which lets merges produce any token) and SentencePiece (normal
   and user-defined pieces only) cannot differ on this vocabulary.
3. Decoding: HF's decode(ids, skip_special_tokens=not special,
   clean_up_tokenization_spaces=False); for every encode case without control
   tokens it is also checked to give the input back -- except texts with a
   literal U+2581, which encodes as the space piece and decodes as ' '.
"""
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

MODEL = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SLM_TEST_MODEL")
         or os.path.expanduser("~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf"))

import gguf  # noqa: E402
import sentencepiece as spm  # noqa: E402
from sentencepiece import sentencepiece_model_pb2 as pb  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402


# ---- the vocabulary, read with the gguf package ----------------------------

def read_vocab(path):
    r = gguf.GGUFReader(path)
    f = r.fields["tokenizer.ggml.tokens"]
    pieces = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    f = r.fields["tokenizer.ggml.scores"]
    scores = [float(f.parts[i][0]) for i in f.data]
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]

    def scalar(key):
        fl = r.fields[key]
        return fl.parts[fl.data[0]][0]
    meta = {k: int(scalar("tokenizer.ggml." + k)) for k in
            ("bos_token_id", "eos_token_id", "unknown_token_id", "add_bos_token", "add_space_prefix")}
    model = bytes(r.fields["tokenizer.ggml.model"].parts[-1]).decode()
    return pieces, scores, types, meta, model


pieces, scores, types, meta, tok_model = read_vocab(MODEL)
N = len(pieces)
assert tok_model == "llama", tok_model
assert meta["bos_token_id"] == 2 and meta["add_bos_token"] == 1 and meta["add_space_prefix"] == 0, meta
BOS = meta["bos_token_id"]
NORMAL, UNKNOWN, CONTROL, USER, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# ---- reference 2: SentencePiece ---------------------------------------------

def build_spm():
    m = pb.ModelProto()
    for p, s, t in zip(pieces, scores, types):
        e = m.pieces.add()
        e.piece, e.score, e.type = p, s, t
    unk = meta["unknown_token_id"]
    m.pieces[unk].type = pb.ModelProto.SentencePiece.UNKNOWN  # SentencePiece wants one UNKNOWN piece
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = N
    ts.byte_fallback = True
    ts.unk_id, ts.bos_id, ts.eos_id = unk, BOS, meta["eos_token_id"]
    ts.pad_id = 0
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = False
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    return spm.SentencePieceProcessor(model_proto=m.SerializeToString())


SP = build_spm()
LITERAL = sorted((i for i in range(N) if types[i] in (UNKNOWN, CONTROL, USER) and pieces[i]),
                 key=lambda i: -len(pieces[i].encode()))


def partition(text, parse_special):
    """llama.cpp's tokenizer_st_partition: each literal token, longest first,
    splits every remaining text fragment at its occurrences."""
    frags = [text] if text else []
    for tid in LITERAL:
        if not parse_special and types[tid] != USER:
            continue
        lit = pieces[tid]
        out = []
        for fr in frags:
            if not isinstance(fr, str) or lit not in fr:
                out.append(fr)
                continue
            parts = fr.split(lit)
            for k, part in enumerate(parts):
                if k:
                    out.append(tid)
                if part:
                    out.append(part)
        frags = out
    return frags


def spm_encode(text, add_bos, parse_special):
    ids = [BOS] if add_bos else []
    for fr in partition(text, parse_special):
        ids.extend([fr] if isinstance(fr, int) else SP.encode(fr))
    return ids


# ---- reference 1: HF transformers -------------------------------------------

HF = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(MODEL)), gguf_file=os.path.basename(MODEL))


def hf_encode(text, add_bos, parse_special):
    return HF(text, add_special_tokens=bool(add_bos), split_special_tokens=not parse_special)["input_ids"]


def hf_decode(ids, special):
    return HF.decode(ids, skip_special_tokens=not special, clean_up_tokenization_spaces=False)


# ---- the cases --------------------------------------------------------------

PARAGRAPH = (
    "Tokenizers turn text into the integer ids a language model reads. A SentencePiece-style "
    "tokenizer, like the one Gemma 3 uses, starts from single characters and repeatedly merges the "
    "adjacent pair whose concatenation is the best-scoring piece of its vocabulary, until no pair can "
    "be merged any more. Spaces are written as the lower one-eighth block (U+2581) so that a word and "
    "the space before it form a single piece; characters the vocabulary lacks fall back to their "
    "UTF-8 bytes. In 2025, the 270-million-parameter model shipped with a vocabulary of 262,144 "
    "pieces: words from dozens of languages, numbers (every digit is its own piece: 3.14159 becomes "
    "seven tokens), emoji such as 😀 and 🎉, code fragments like `for (int i = 0; i < n; i++)`, and "
    "runs of whitespace for indentation.\n\nWhy does this matter? Because prompts are measured in "
    "tokens, not characters: the context window (32,768 tokens for this model) and the speed "
    "(tokens per second) are both counted that way. A French sentence — « Le renard brun saute "
    "par-dessus le chien paresseux » — costs more tokens than its English twin; Chinese (敏捷的棕色狐狸"
    "跳过了懒狗) and Hindi (तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है) differ again. Good tokenizers are "
    "lossless: decoding the ids must give back exactly the bytes that went in, including \"quotes\", "
    "'apostrophes', tabs\tand trailing spaces.  Test it on e-mail addresses (someone@example.com), "
    "URLs (https://example.org/path?query=1&x=2#frag), hashtags (#NLP), and prices ($19.99, €5, "
    "¥1000). Finally, remember that the same word may tokenize differently at the start of a line, "
    "after a space, or inside parentheses (like this), and that capitalisation matters: Apple, apple "
    "and APPLE are three different sequences.\n")

PYTHON = ('def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n'
          '    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == "__main__":\n'
          '    print([fib(i) for i in range(10)])\n')
C_CODE = ('#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; i++)\n'
          '\t\tprintf("%d: %s\\n", i, argv[i]);\n\treturn 0;\n}\n')
JSON = '{\n  "name": "slm",\n  "version": [0, 1, 0],\n  "tags": ["c11", "gguf"],\n  "ok": true,\n  "pi": 3.14\n}'
HTML = ('<html><body><h1>Title</h1><p>Some <b>bold</b> and <i>italic</i> text, a '
        '<a href="https://x.y">link</a>.</p><table><tr><td>1</td><td>2</td></tr></table>'
        '<div><span>x</span></div></body></html>')
CHAT = "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"

CASES = [
    # (text, flags...) -- flags: list of (add_bos, parse_special)
    "", " ", "  ", "   ", "    ", "        ", " " * 16, " " * 31, " " * 32, " " * 33, " " * 40, " " * 64,
    "a" + " " * 40 + "b", "\t", "\t\t", "\t" * 5, "a\tb", "\n", "\n\n", "\n\n\n", "\n" * 40, "\r\n",
    "line one\r\nline two\r\n", "\r", "\n \n", " \n ", "\t \n  \t\t\n\n   x", "a\n\nb\n\n\nc",
    " hello", "hello ", "  hello  ", "hello world   ", "   leading and trailing   ",
    "The capital of France is", "Hello, world!", "hello world", "HELLO WORLD", "don't stop believin'",
    "It's a test.", "The quick brown fox jumps over the lazy dog.", "a", "I",
    "!!!", "?!", "...", "—", "“quoted” ‘single’", "(a), [b], {c}; <d>", "@#$%^&*_+=|\\/~`",
    "1", "12", "123", "123456789", "3.14", "-42", "1,000,000", "2024-01-15", "0x1F", "1e-9",
    PYTHON, C_CODE, JSON, HTML, "    return x;", "\tif (x) {\n\t\ty();\n\t}",
    "SELECT * FROM t WHERE a = 1;", "ls -la | grep '.c$' > out.txt",
    "café", "naïve résumé", "Ångström", "e\u0301", "日本語のテキスト", "你好，世界", "한국어 텍스트",
    "مرحبا بالعالم", "नमस्ते दुनिया", "Привет, мир", "Γειά σου κόσμε", "עברית", "ไทย", "Ελληνικά",
    "😀", "😀😃😄", "👍🏽", "👍🏿👋🏻", "👨‍👩‍👧‍👦", "🧑🏽‍💻", "🇫🇷🇯🇵🇺🇸", "❤️", "🏳️‍🌈", "🎉 party 🎉",
    "𠀀", "𪚥", "𠜎𠜱", "\ue000", "\U000F0000", "\U0010FFFD", "\x00", "a\x00b", "\x01\x02\x1f", "\x7f",
    "\u200b", "\ufeff", "\u00a0", "\u2028", "\uffff",
    "▁", "a▁b", "▁▁", "x ▁ y",
    PARAGRAPH,
    # literal tokens
    CHAT, "<start_of_turn>", "<end_of_turn>", "<bos>Hello", "<eos>", "<pad><unk><mask>",
    "<unused0> <unused99>", "[multimodal]", "<start_of_image><end_of_image>", "<b>bold</b>",
    "<start_of_turn", "<<start_of_turn>>", "<end_of_turn><end_of_turn>", "text<end_of_turn>more",
    "<h1>x</h1>\n<blockquote>q</blockquote>", "<0x41>", " <start_of_turn> ",
]

FLAGS_DEFAULT = [(1, 0)]
FLAGS_LITERAL = [(1, 0), (1, 1), (0, 1)]
FLAGS_EXTRA = {"": [(1, 0), (0, 0), (1, 1), (0, 1)], "hello world": [(1, 0), (0, 0)],
               "The capital of France is": [(1, 0), (0, 0)], " ": [(1, 0), (0, 0)],
               "\n": [(1, 0), (0, 0)], PYTHON: [(1, 0), (0, 1)]}


def flags_for(text):
    if text in FLAGS_EXTRA:
        return FLAGS_EXTRA[text]
    if "<" in text or "[" in text:
        return FLAGS_LITERAL
    return FLAGS_DEFAULT


def has_control(text):
    return any(pieces[i] in text for i in LITERAL if types[i] in (CONTROL, UNKNOWN))


def main():
    os.makedirs(OUT, exist_ok=True)
    enc_lines, dec_cases = [], []
    deviations = []
    seen = set()
    for text in CASES:
        if text in seen:
            raise SystemExit(f"duplicate case {text!r}")
        seen.add(text)
        for add_bos, ps in flags_for(text):
            ref_sp = spm_encode(text, add_bos, ps)
            ref_hf = hf_encode(text, add_bos, ps)
            if ref_sp != ref_hf:
                if " " * 32 in text:
                    kind = "32+ spaces"
                elif "\u2581" in text:
                    kind = "literal U+2581"
                else:
                    raise SystemExit(f"unexplained disagreement on {text!r} flags {add_bos}{ps}:\n"
                                     f"  sentencepiece {ref_sp}\n  transformers  {ref_hf}")
                deviations.append(f"# {kind}: {text[:20]!r}.. flags {add_bos}{ps}: HF {ref_hf} -> using {ref_sp}")
            ids = ref_sp
            enc_lines.append(f"{text.encode().hex()}\t{add_bos}{ps}\t{' '.join(map(str, ids))}")
            # round trip through the reference decoder (a literal U+2581 is
            # the space piece, so it comes back as ' ': not reversible)
            if not (ps and has_control(text)) and "\u2581" not in text:
                back = hf_decode(ids, False)
                if back != text:
                    raise SystemExit(f"HF decode does not give {text!r} back: {back!r}")
            if add_bos and ps and has_control(text):
                dec_cases.append(ids)

    # decode cases: the literal-token encodings above, plus hand-picked ids
    picked = [
        [2, 818, 5279, 529, 7001, 563],
        [478, 398, 366, 366],                 # U+20000 from byte tokens
        [238], [248], [251, 107],             # <0x00>, <0x0A>, "\r\n"
        [107, 108, 138, 167, 255968, 255969],  # user-defined whitespace
        [200, 15640, 209],                    # <b>bold</b>
        [5, 255999, 256000],                  # [multimodal] <start_of_image> <end_of_image>
        [0, 1, 2, 3, 4, 105, 106, 6, 262143],  # control tokens only
        [236743, 236743, 236743],             # "▁" x3
        [2, 105, 2364, 107, 9259, 106, 107],
    ]
    dec_lines = []
    for ids in dec_cases + picked:
        for special in (0, 1):
            text = hf_decode(ids, bool(special))
            dec_lines.append(f"{' '.join(map(str, ids))}\t{special}\t{text.encode().hex()}")

    with open(os.path.join(OUT, "gemma3.tsv"), "w") as f:
        f.write("# Gemma 3 tokenizer cases: hex(input) TAB flags(add_bos parse_special) TAB ids\n")
        f.write(f"# written by scripts/gen_tokenizer_fixtures.py from {os.path.basename(MODEL)}\n")
        f.write("# ids: SentencePiece on llama.cpp's partition, checked against HF transformers;\n")
        f.write("# the known, documented disagreements with transformers:\n")
        for d in deviations:
            f.write(d + "\n")
        f.write("\n".join(enc_lines) + "\n")
    with open(os.path.join(OUT, "gemma3_decode.tsv"), "w") as f:
        f.write("# Gemma 3 decoding: ids TAB special TAB hex(bytes), from HF transformers' decode\n")
        f.write("\n".join(dec_lines) + "\n")
    print(f"{len(enc_lines)} encode cases ({len(CASES)} texts), {len(dec_lines)} decode cases, "
          f"{len(deviations)} documented deviations from transformers", file=sys.stderr)


if __name__ == "__main__":
    main()
