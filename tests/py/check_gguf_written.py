#!/usr/bin/env python3
"""Reads the file tests/test_gguf_write.c builds with our GGUF writer, using
the `gguf` Python package (an independent reader), and checks every key,
value, tensor shape, type and byte against what the C test put in.
Exit status 0 when all match; the first mismatch is printed."""
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGMLQuantizationType, quants


def fail(msg):
    print("check_gguf_written: " + msg, file=sys.stderr)
    sys.exit(1)


def main(path):
    r = GGUFReader(path)
    want_keys = ["general.architecture", "general.alignment", "t.u32", "t.i32", "t.u64", "t.f32",
                 "t.bool", "t.str", "t.replaced", "t.arr_str", "t.arr_i32", "t.arr_f32", "t.arr_empty"]
    # the reader adds GGUF.version, GGUF.tensor_count, GGUF.kv_count first
    keys = [k for k in r.fields.keys() if not k.startswith("GGUF.")]
    if keys != want_keys:
        fail(f"keys {keys} != {want_keys}")
    if r.alignment != 64:
        fail(f"alignment {r.alignment}")

    def val(k):
        return r.fields[k].contents()

    def typ(k):
        return r.fields[k].types

    checks = [
        ("general.architecture", "testarch", [GGUFValueType.STRING]),
        ("general.alignment", 64, [GGUFValueType.UINT32]),
        ("t.u32", 4000000000, [GGUFValueType.UINT32]),
        ("t.i32", -123456, [GGUFValueType.INT32]),
        ("t.u64", 0x123456789abcdef, [GGUFValueType.UINT64]),
        ("t.bool", True, [GGUFValueType.BOOL]),
        ("t.str", "hello \u2581 world", [GGUFValueType.STRING]),
        ("t.replaced", "second", [GGUFValueType.STRING]),
        ("t.arr_str", ["alpha", "", "g\u00e9", "<0x0A>"], [GGUFValueType.ARRAY, GGUFValueType.STRING]),
        ("t.arr_i32", [1, -2, 2147483647, -2147483648], [GGUFValueType.ARRAY, GGUFValueType.INT32]),
    ]
    for k, v, t in checks:
        if val(k) != v or typ(k) != t:
            fail(f"{k}: {val(k)!r} {typ(k)} != {v!r} {t}")
    if np.float32(val("t.f32")) != np.float32(0.1) or typ("t.f32") != [GGUFValueType.FLOAT32]:
        fail("t.f32")
    if [np.float32(x) for x in val("t.arr_f32")] != [np.float32(0.5), np.float32(-1e-20), np.float32(3.0e30)]:
        fail(f"t.arr_f32 {val('t.arr_f32')}")
    # an empty array: the package records no element type, so read it from the raw parts
    emp = r.fields["t.arr_empty"]
    if val("t.arr_empty") != [] or typ("t.arr_empty") != [GGUFValueType.ARRAY] or int(emp.parts[3][0]) != int(GGUFValueType.INT32):
        fail("t.arr_empty")

    t = {x.name: x for x in r.tensors}
    if list(t) != ["a.f32", "b.f16", "c.q8_0", "d.vec", "e.q4_k"]:
        fail(f"tensors {list(t)}")
    f32 = np.arange(37 * 3, dtype=np.float32) * np.float32(0.5) - np.float32(7.0)
    a = t["a.f32"]
    if a.tensor_type != GGMLQuantizationType.F32 or list(a.shape) != [37, 3] or not np.array_equal(a.data.reshape(-1), f32):
        fail("a.f32")
    b = t["b.f16"]
    f16 = ((np.arange(128) - 64) / 8.0).astype(np.float16)
    if b.tensor_type != GGMLQuantizationType.F16 or list(b.shape) != [64, 2] or not np.array_equal(b.data.reshape(-1), f16):
        fail("b.f16")
    c = t["c.q8_0"]
    raw = (np.arange(2 * 34 * 2) * 7 + 3).astype(np.uint8)
    for blk in range(4):
        raw[blk * 34] = 0x00
        raw[blk * 34 + 1] = 0x3c
    if c.tensor_type != GGMLQuantizationType.Q8_0 or list(c.shape) != [64, 2]:
        fail("c.q8_0 header")
    if not np.array_equal(c.data.reshape(-1).view(np.uint8), raw):
        fail("c.q8_0 bytes")
    deq = quants.dequantize(c.data, GGMLQuantizationType.Q8_0).reshape(-1)
    if not np.array_equal(deq, raw.reshape(4, 34)[:, 2:].view(np.int8).astype(np.float32).reshape(-1)):
        fail("c.q8_0 dequantized")
    d = t["d.vec"]
    if list(d.shape) != [5] or not np.array_equal(d.data.reshape(-1), f32[:5]):
        fail("d.vec")
    e = t["e.q4_k"]
    raw = ((np.arange(144 * 3) * 13 + 1) % 256).astype(np.uint8)
    for blk in range(3):
        raw[blk * 144:blk * 144 + 4] = [0x00, 0x38, 0x00, 0x34]
    if e.tensor_type != GGMLQuantizationType.Q4_K or list(e.shape) != [256, 1, 3]:
        fail(f"e.q4_k header {e.tensor_type} {list(e.shape)}")
    if not np.array_equal(e.data.reshape(-1).view(np.uint8), raw):
        fail("e.q4_k bytes")
    for x in r.tensors:
        if x.data_offset % 64:
            fail(f"{x.name} at offset {x.data_offset}, not 64-aligned")
    print("check_gguf_written: ok")


if __name__ == "__main__":
    main(sys.argv[1])
