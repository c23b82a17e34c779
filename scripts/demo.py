#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RosenBridge demo (engine stage): build a small BPF-KV database, look keys
up by running the clang-built node-search eBPF program in our engine once per
B+-tree level (the step a RosenXRP lookup repeats next to the storage), check
every value, then run the engine benchmark (interpreter vs native C).

Usage: scripts/demo.py [BUILD_DIR]
"""
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

FANOUT = 31
BLOCK = 512
TAG = 1 << 63


def build_db(path, levels):
    """Writes a BPF-KV database (format: shared/reference/bpf-kv.md)."""
    counts = [FANOUT ** i for i in range(levels)]
    total_nodes = sum(counts)
    first = [sum(counts[:i]) for i in range(levels)]
    with open(path, "wb") as f:
        for lvl in range(levels):
            span = FANOUT ** (levels - lvl)
            step = span // FANOUT
            leaf = lvl == levels - 1
            for j in range(counts[lvl]):
                keys = [j * span + k * step for k in range(FANOUT)]
                if leaf:
                    ptrs = [TAG | (total_nodes * BLOCK + 64 * key) for key in keys]
                else:
                    ptrs = [TAG | ((first[lvl + 1] + j * FANOUT + k) * BLOCK)
                            for k in range(FANOUT)]
                nxt = 0 if j == counts[lvl] - 1 else (first[lvl] + j + 1) * BLOCK
                f.write(struct.pack("<QQ31Q31Q", nxt, 1 if leaf else 0, *keys, *ptrs))
        nkeys = FANOUT ** levels
        vals = bytearray()
        for key in range(nkeys):
            vals += ("%63d" % key).encode() + b"\0"
        vals += b"\0" * ((-len(vals)) % BLOCK)
        f.write(vals)
    return nkeys


def lookup(tool, obj, db, key, scratch):
    """Walks root -> leaf, one engine run per level; returns (value, hops)."""
    off, hops = 0, []
    while True:
        with open(db, "rb") as f:
            f.seek(off)
            node = f.read(BLOCK)
        with open(scratch, "wb") as f:
            f.write(node + struct.pack("<Q", key))
        p = subprocess.run([tool, "run", obj, "bpfkv_node_search", "--mem", scratch],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip())
        nxt = int(p.stdout, 16)
        hops.append(off)
        node_type = struct.unpack_from("<Q", node, 8)[0]
        if node_type == 1:
            if nxt == (1 << 64) - 1:
                return None, hops
            with open(db, "rb") as f:
                f.seek(nxt)
                return f.read(64), hops
        off = nxt


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    tool = os.path.join(build, "app", "rosen-bpf", "rosen-bpf")
    obj = os.path.join(build, "progs", "bpfkv_node_search.o")
    bench = os.path.join(build, "bench", "engine", "engine_bench")
    levels = 3

    print("RosenBridge demo: the eBPF engine running BPF-KV's node search\n")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bpfkv.db")
        nkeys = build_db(db, levels)
        print(f"built a {levels}-level BPF-KV database: {nkeys} keys, "
              f"{os.path.getsize(db) // 1024} KiB ({db})")
        print(f"program: {obj} section bpfkv_node_search "
              f"(clang-19 -target bpf, see progs/bpfkv_node_search.c)\n")
        rng = random.Random(2026)
        keys = [0, nkeys - 1] + [rng.randrange(nkeys) for _ in range(4)]
        scratch = os.path.join(tmp, "node+key.bin")
        bad = 0
        for key in keys:
            t0 = time.time()
            value, hops = lookup(tool, obj, db, key, scratch)
            ms = (time.time() - t0) * 1000
            text = value.rstrip(b"\0").decode().strip() if value else None
            ok = text == str(key)
            bad += not ok
            path = " -> ".join(str(h) for h in hops)
            print(f"  key {key:6d}: nodes at {path:28s} value '{text}' "
                  f"{'ok' if ok else 'WRONG'}  ({ms:.0f} ms, one process per hop)")
        value, _ = lookup(tool, obj, db, nkeys + 10, scratch)
        print(f"  key {nkeys + 10:6d}: {'not found (correct)' if value is None else 'FOUND?!'}")
        bad += value is not None
        if bad:
            print(f"\n{bad} lookups went wrong")
            return 1

    print("\nEngine benchmark (bench/engine, --quick):")
    sys.stdout.flush()
    p = subprocess.run([bench, "--quick"])
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
