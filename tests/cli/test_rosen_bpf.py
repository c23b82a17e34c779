#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the rosen-bpf command line as a user runs it: exit codes,
what goes to stdout and stderr, and results of clang-built programs.

Usage: test_rosen_bpf.py --build BUILD_DIR
Ends with "N passed, N failed".
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAG = 1 << 63
results = []


def run(args, stdin=None):
    p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    results.append(cond)
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + detail))


def node_bytes(node_type, keys, ptrs, key):
    assert len(keys) == 31 and len(ptrs) == 31
    return struct.pack("<QQ31Q31QQ", 0, node_type, *keys, *ptrs, key)


def expected_child(node_type, keys, ptrs, key):
    if node_type == 1:
        for k, p in zip(keys, ptrs):
            if k == key:
                return p & ~TAG
        return (1 << 64) - 1
    for i in range(1, 31):
        if key < keys[i]:
            return ptrs[i - 1] & ~TAG
    return ptrs[30] & ~TAG


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    tool = os.path.join(a.build, "app", "rosen-bpf", "rosen-bpf")
    obj = os.path.join(a.build, "progs", "bpfkv_node_search.o")
    tmp = tempfile.mkdtemp()

    rc, out, err = run([tool, "--help"])
    check("help_exits_0_and_lists_commands", rc == 0 and "run OBJECT.o SECTION" in out
          and "plugin" in out and "disasm" in out, err)

    rc, out, err = run([tool])
    check("no_command_is_usage_error", rc == 2 and "usage" in err, f"rc={rc}")

    rc, out, err = run([tool, "frobnicate"])
    check("unknown_command_is_named", rc == 2 and "frobnicate" in err, err)

    # Node search on random BPF-KV nodes, checked against a Python model.
    rng = random.Random(7)
    ok = True
    detail = ""
    for trial in range(12):
        keys = sorted(rng.sample(range(1, 1 << 40), 31))
        ptrs = [TAG | (rng.randrange(1 << 30) * 512) for _ in range(31)]
        node_type = trial % 2
        choices = [keys[0] - 1, keys[0], keys[30], keys[30] + 5,
                   keys[rng.randrange(31)], rng.randrange(keys[0], keys[30])]
        key = choices[trial % len(choices)]
        path = os.path.join(tmp, "node.bin")
        with open(path, "wb") as f:
            f.write(node_bytes(node_type, keys, ptrs, key))
        rc, out, err = run([tool, "run", obj, "bpfkv_node_search", "--mem", path])
        want = "%x\n" % expected_child(node_type, keys, ptrs, key)
        if rc != 0 or out != want:
            ok = False
            detail = f"trial {trial}: rc={rc} out={out!r} want={want!r} err={err}"
            break
    check("run_node_search_matches_model", ok, detail)

    rc, out, err = run([tool, "run", obj, "bpfkv_node_search"])
    check("run_without_mem_passes_zero_length", rc == 0 and out == "%x\n" % ((1 << 64) - 2),
          f"rc={rc} out={out!r} err={err}")

    short = os.path.join(tmp, "short.bin")
    with open(short, "wb") as f:
        f.write(b"\0" * 100)
    rc, out, err = run([tool, "run", obj, "bpfkv_node_search", "--mem", short, "--stats"])
    check("run_short_buffer_is_rejected_by_program", rc == 0 and out == "%x\n" % ((1 << 64) - 2)
          and "executed" in err, f"rc={rc} out={out!r} err={err}")

    rc, out, err = run([tool, "run", obj, "no_such_section"])
    check("run_missing_section_names_it", rc == 1 and "no_such_section" in err and out == "",
          f"rc={rc} err={err}")

    rc, out, err = run([tool, "run", os.path.join(tmp, "absent.o"), "x"])
    check("run_missing_object_names_file", rc == 1 and "absent.o" in err, err)

    rc, out, err = run([tool, "run", obj, "bpfkv_node_search", "--mem", os.path.join(tmp, "nope")])
    check("run_missing_mem_file_names_it", rc == 1 and "nope" in err, err)

    rc, out, err = run([tool, "run", obj, "bpfkv_node_search", "--budget", "abc"])
    check("run_bad_budget_is_usage_error", rc == 2 and "--budget" in err, err)

    node = os.path.join(tmp, "node2.bin")
    keys = list(range(100, 3200, 100))
    with open(node, "wb") as f:
        f.write(node_bytes(0, keys, [TAG | i for i in range(31)], 3150))
    rc, out, err = run([tool, "run", obj, "bpfkv_node_search", "--mem", node, "--budget", "5"])
    check("run_budget_exhaustion_fails_clearly", rc == 1 and "budget" in err and out == "",
          f"rc={rc} err={err}")

    notelf = os.path.join(tmp, "notelf.o")
    with open(notelf, "wb") as f:
        f.write(b"this is not an ELF object at all" * 4)
    rc, out, err = run([tool, "run", notelf, "x"])
    check("run_non_elf_input_is_rejected", rc == 1 and err.strip() != "", err)

    rc, out, err = run([tool, "disasm", obj])
    check("disasm_lists_program_with_exit", rc == 0 and "bpfkv_node_search:" in out
          and "exit" in out and "ldxdw" in out, f"rc={rc} err={err}")

    rc, out, err = run([tool, "disasm", obj, "bpfkv_node_search"])
    check("disasm_one_section", rc == 0 and out.startswith("bpfkv_node_search:"), err)

    # The plugin contract: hex program on stdin, memory as first argument.
    prog = "71 10 02 00 00 00 00 00 95 00 00 00 00 00 00 00"  # ldxb r0, [r1+2]; exit
    rc, out, err = run([tool, "plugin", "0a 0b 0c 0d", "--interpret"], stdin=prog + " \n")
    check("plugin_reads_memory_argument", rc == 0 and out == "c\n", f"rc={rc} out={out!r} err={err}")

    rc, out, err = run([tool, "plugin", "--jit"], stdin="b7 00 00 00 2a 00 00 00   95 00 00 00 00 00 00 00\n")
    check("plugin_without_memory_and_extra_spaces", rc == 0 and out == "2a\n", f"rc={rc} out={out!r}")

    rc, out, err = run([tool, "plugin"], stdin="b7 00 00 00\n")
    check("plugin_partial_instruction_fails", rc == 1 and "multiple of 8" in err, err)

    rc, out, err = run([tool, "plugin"], stdin="zz 00\n")
    check("plugin_non_hex_fails", rc == 1 and "hex" in err, err)

    rc, out, err = run([tool, "plugin", "00 01"], stdin="71 10 05 00 00 00 00 00 95 00 00 00 00 00 00 00\n")
    check("plugin_out_of_bounds_read_fails", rc == 1 and "insn 0" in err and out == "", err)

    # verify: the check rosenbridged runs at LOAD, as a tool.
    progs = os.path.join(a.build, "progs")
    hostile = os.path.join(a.build, "tests", "programs", "verifier_hostile.o")
    for o, sec, t in [("bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", "xrp"),
                      ("bpfkv_xrp_get.o", "bpfkv_xrp_get", "xrp"),
                      ("bpfkv_xrp_range.o", "bpfkv_xrp_range", "xrp"),
                      ("bpfkv_get.o", "bpfkv_get", "cq"),
                      ("bpfkv_range.o", "bpfkv_range", "cq")]:
        rc, out, err = run([tool, "verify", os.path.join(progs, o), sec, "--type", t, "--stats"])
        check(f"verify_accepts_{sec}", rc == 0 and "accepted" in err and "walked" in err
              and out == "", f"rc={rc} err={err}")
    rc, out, err = run([tool, "verify", hostile, "cq_leak_scratch", "--type", "cq"])
    check("verify_rejects_pointer_leak_with_log", rc == 1 and "rejected" in err
          and "insn " in err and "registers" in err and "scratch" in err, f"rc={rc} err={err}")
    rc, out, err = run([tool, "verify", hostile, "xrp_data_fwd", "--type", "xrp"])
    check("verify_rejects_overrun_naming_region", rc == 1 and "4096-byte data" in err, err)
    rc, out, err = run([tool, "verify", os.path.join(progs, "bpfkv_get.o"), "bpfkv_get",
                        "--type", "xrp"])
    check("verify_wrong_type_is_rejected", rc == 1 and ("xrp context" in err or "not a pointer" in err),
          f"rc={rc} err={err}")
    rc, out, err = run([tool, "verify", hostile, "cq_leak_scratch"])
    check("verify_without_type_is_usage_error", rc == 2 and "--type" in err, err)
    rc, out, err = run([tool, "verify", hostile, "cq_leak_scratch", "--type", "tc"])
    check("verify_unknown_type_is_usage_error", rc == 2 and "sq, cq or xrp" in err, err)
    rc, out, err = run([tool, "verify", hostile, "no_such", "--type", "cq"])
    check("verify_missing_section_fails", rc == 1 and "no_such" in err, err)

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
