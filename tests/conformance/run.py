#!/usr/bin/env python3
"""run.py - run the RosenBridge instruction corpus through `rosen-bpf plugin`.

Usage:
    run.py [options] [CASEFILE ...]

    CASEFILE   a .t file, or a bare name such as `alu64` (= cases/alu64.t,
               else strict/alu64.t); default: every cases/*.t
               (plus strict/*.t with --strict)
Options:
    --bpf PATH     the rosen-bpf binary (default: $ROSEN_BPF, else
                   build/app/rosen-bpf/rosen-bpf under the repository root)
    --jit          pass `--jit` instead of `--interpret`
    --args="A B"   replace the mode arguments entirely (default "--interpret";
                   write it with `=` when the value starts with `--`)
    --strict       also run strict/*.t, for policy-dependent cases (none at
                   present: the engine rejects non-zero unused fields, RFC
                   9669 section 3, so those cases are in cases/reserved.t)
    -k TEXT        only run cases whose name contains TEXT
    -q             print only FAIL lines (and the summary)
    --list         list the cases and their assembled programs; run nothing
    --timeout S    per-case timeout in seconds (default 20)

Case file format (one file per instruction family):

    # comment lines before the first case are ignored
    == case-name
    -- mem                   (optional) input memory as hex bytes, any lines
    01 02 03 04
    -- asm                   the program, in asm.py syntax
    mov r0, 1
    exit
    -- result 0x1           expected r0 (any Python int literal, may be
                            negative: it is taken modulo 2**64)
 or -- error [note]         expect exit status 1 with a reason on stderr

Protocol tests may give the exact stdin line / memory argument instead, as a
quoted Python string literal on the section line (used by input.t):
    -- program "b7 00  00 00 05 00 00 00 95 00 00 00 00 00 00 00 "
    -- memarg "01  02 03 "

Invocation per case: `rosen-bpf plugin [MEM] --interpret` with the program's
hex bytes as one line on stdin.  MEM (one argv string of space-separated hex
bytes) is passed only when the case has a non-empty `-- mem` section.

Output: `PASS file:name` or `FAIL file:name: ...` per case, then exactly one
line `N passed, N failed`.  Exit status 1 if anything failed.
"""

import argparse
import ast
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # keep tests/conformance free of __pycache__
sys.path.insert(0, HERE)
import asm  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
MASK64 = (1 << 64) - 1


class Case:
    def __init__(self, fname, name, lineno):
        self.fname, self.name, self.lineno = fname, name, lineno
        self.asm_lines, self.mem_lines = [], []
        self.expect = None          # int, or "error"
        self.note = ""
        self.problem = None         # corpus error (reported as FAIL)
        self.program = None         # verbatim stdin line (-- program)
        self.memarg = None          # verbatim memory argument (-- memarg)

    @property
    def label(self):
        return "%s:%s" % (self.fname, self.name)


def parse_file(path):
    fname = os.path.basename(path)
    cases, cur, section = [], None, None
    seen = set()
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            s = line.rstrip("\n")
            if s.startswith("== "):
                cur = Case(fname, s[3:].strip(), lineno)
                if cur.name in seen:
                    cur.problem = "duplicate case name"
                seen.add(cur.name)
                cases.append(cur)
                section = None
                continue
            if cur is None:
                if s.strip() and not s.lstrip().startswith("#"):
                    raise SystemExit("%s:%d: text before the first case" % (path, lineno))
                continue
            if s.startswith("-- "):
                words = s[3:].strip().split(None, 1)
                kind = words[0] if words else ""
                arg = words[1] if len(words) > 1 else ""
                if kind == "asm":
                    section = "asm"
                elif kind == "mem":
                    section = "mem"
                elif kind == "result":
                    section = None
                    try:
                        cur.expect = int(arg.split("#")[0].strip(), 0) & MASK64
                    except ValueError:
                        cur.problem = "bad result %r" % arg
                elif kind in ("program", "memarg"):
                    section = None
                    try:
                        val = ast.literal_eval(arg)
                        if not isinstance(val, str):
                            raise ValueError
                        setattr(cur, kind, val)
                    except (ValueError, SyntaxError):
                        cur.problem = "bad %s string %r" % (kind, arg)
                elif kind == "error":
                    section = None
                    cur.expect = "error"
                    cur.note = arg
                else:
                    cur.problem = "unknown section %r (line %d)" % (kind, lineno)
                continue
            if section == "asm":
                cur.asm_lines.append(s)
            elif section == "mem":
                cur.mem_lines.append(s.split("#")[0])
            elif s.strip() and not s.lstrip().startswith("#"):
                cur.problem = "stray text at line %d" % lineno
    for c in cases:
        if c.problem is None and c.expect is None:
            c.problem = "no -- result / -- error"
        if c.problem is None and c.program is None and \
                not "".join(c.asm_lines).strip():
            c.problem = "no -- asm"
    return cases


def mem_arg(case):
    toks = " ".join(case.mem_lines).split()
    for t in toks:
        if not re.fullmatch(r"[0-9a-fA-F]{2}", t):
            raise ValueError("bad memory byte %r" % t)
    return " ".join(t.lower() for t in toks)


def short(text, n=200):
    text = text.strip().replace("\n", " | ")
    return text if len(text) <= n else text[:n] + "..."


def run_case(case, bpf, mode_args, timeout):
    """Return (ok, message)."""
    if case.problem:
        return False, "corpus problem: " + case.problem
    try:
        if case.program is not None:
            prog = case.program
        else:
            prog = asm.to_hex(asm.assemble("\n".join(case.asm_lines)))
        mem = case.memarg if case.memarg is not None else mem_arg(case)
    except (asm.AsmError, ValueError) as e:
        return False, "corpus problem: %s" % e
    argv = [bpf, "plugin"] + ([mem] if mem else []) + mode_args
    try:
        p = subprocess.run(argv, input=prog + "\n", capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timed out after %ss" % timeout
    except OSError as e:
        return False, "cannot run %s: %s" % (bpf, e)
    out, err, rc = p.stdout, p.stderr, p.returncode
    if case.expect == "error":
        if rc == 1 and err.strip():
            return True, ""
        if rc == 1:
            return False, "expected error: exit 1 but stderr is empty"
        return False, "expected error (exit 1) got exit %d stdout %r (stderr: %s)" % (
            rc, short(out), short(err))
    want = "%x" % case.expect
    if rc == 0 and out.strip() == want and "\n" not in out.strip():
        return True, ""
    return False, "expected %s got %s (exit %d, stderr: %s)" % (
        want, repr(short(out)) if out.strip() else "no output", rc, short(err))


def main():
    ap = argparse.ArgumentParser(description="run the conformance corpus")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--bpf")
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--args", dest="mode_args")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("-k", dest="filter")
    ap.add_argument("-q", dest="quiet", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()

    bpf = a.bpf or os.environ.get("ROSEN_BPF") or \
        os.path.join(REPO, "build", "app", "rosen-bpf", "rosen-bpf")
    if a.mode_args is not None:
        mode_args = a.mode_args.split()
    else:
        mode_args = ["--jit"] if a.jit else ["--interpret"]

    default = sorted(glob.glob(os.path.join(HERE, "cases", "*.t")))
    if a.strict:
        default += sorted(glob.glob(os.path.join(HERE, "strict", "*.t")))
    files = []
    for f in a.files or default:
        if not os.path.exists(f):
            name = f if f.endswith(".t") else f + ".t"
            for cand in (os.path.join(HERE, name),
                         os.path.join(HERE, "cases", name),
                         os.path.join(HERE, "strict", name)):
                if os.path.exists(cand):
                    f = cand
                    break
            else:
                sys.exit("no such case file: %s" % f)
        files.append(f)

    cases = []
    for f in files:
        cases.extend(parse_file(f))
    if a.filter:
        cases = [c for c in cases if a.filter in c.name]

    if a.list:
        for c in cases:
            try:
                prog = c.program if c.program is not None else \
                    asm.to_hex(asm.assemble("\n".join(c.asm_lines)))
            except asm.AsmError as e:
                prog = "ASM ERROR: %s" % e
            exp = "error" if c.expect == "error" else (
                "%x" % c.expect if c.expect is not None else "?")
            print("%s  [%s]  %s" % (c.label, exp, prog))
        return 0

    if not os.path.exists(bpf):
        print("warning: %s does not exist" % bpf, file=sys.stderr)

    passed = failed = 0
    for c in cases:
        ok, msg = run_case(c, bpf, mode_args, a.timeout)
        if ok:
            passed += 1
            if not a.quiet:
                print("PASS %s" % c.label)
        else:
            failed += 1
            print("FAIL %s: %s" % (c.label, msg))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
