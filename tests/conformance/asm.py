#!/usr/bin/env python3
"""asm.py - a small eBPF assembler for the RosenBridge conformance corpus.

Python 3 standard library only.  Reads assembly text and writes the program
as one line of lowercase hex bytes separated by single spaces, which is what
`rosen-bpf plugin` reads on stdin.

    python3 asm.py [FILE]        # FILE or stdin; prints the hex line
    import asm; asm.assemble(text) -> bytes; asm.to_hex(bytes) -> str

Encoding (RFC 9669, little-endian): opcode(8) | src_reg(4) dst_reg(4) |
offset(16, signed) | imm(32, signed).  lddw takes two 8-byte slots.

Syntax
------
One instruction per line.  `#` starts a comment.  `name:` defines a label (it
may share a line with an instruction).  Registers are r0..r10.  Numbers are
decimal or 0x-hex, optionally negative; an immediate must fit in 32 bits and
may be written signed (-1) or as the unsigned bit pattern (0xffffffff) -- it
is the same encoding, and ALU64/JMP sign-extend it either way.

ALU64 (class 0x07) / ALU (class 0x04, mnemonic + "32"):
    add sub mul div sdiv or and lsh rsh mod smod xor mov arsh   dst, src|imm
    add32 sub32 ... mov32 arsh32                                dst, src|imm
    neg dst / neg32 dst
    sdiv/smod(32) encode offset = 1.
MOVSX (register source only):
    movsx8  dst, src   ALU64, offset 8    dst = (s64)(s8)src
    movsx16 dst, src   ALU64, offset 16   dst = (s64)(s16)src
    movsx32 dst, src   ALU64, offset 32   dst = (s64)(s32)src
    movsx8_32  dst, src   ALU (32-bit result, upper half zeroed), offset 8
    movsx16_32 dst, src   ALU, offset 16
    movsx32_32 dst, src   ALU, offset 32 (NOT defined by RFC 9669; for
                          rejection tests)
Byte swap:
    le16 le32 le64 dst     ALU  END, source bit 0 (to little endian), opcode 0xd4
    be16 be32 be64 dst     ALU  END, source bit 1 (to big endian),    opcode 0xdc
    bswap16 bswap32 bswap64 dst   ALU64 END (unconditional swap),     opcode 0xd7
Loads / stores (memory operand [rN], [rN+off], [rN-off]):
    ldxb ldxh ldxw ldxdw   dst, [src+off]     LDX MEM
    ldxsb ldxsh ldxsw      dst, [src+off]     LDX MEMSX (sign-extending)
    stb sth stw stdw       [dst+off], imm     ST MEM
    stxb stxh stxw stxdw   [dst+off], src     STX MEM
    lddw dst, imm64                           LD IMM DW (two slots, src 0)
Atomics (STX ATOMIC, DW unless the op ends in 32):
    lock add|or|and|xor [dst+off], src                 imm = op
    lock fetch_add|fetch_or|fetch_and|fetch_xor ...    imm = op | FETCH
    lock xchg [dst+off], src                           imm = 0xe1
    lock cmpxchg [dst+off], src                        imm = 0xf1 (compares r0)
    append 32 for the 32-bit form: lock add32, lock fetch_xor32, lock xchg32,
    lock cmpxchg32 ...
Jumps (target = label, or +N / -N counted in slots from the next instruction):
    ja target                        JMP  JA, offset field
    ja32 target                      JMP32 JA, imm field ("gotol")
    jeq jgt jge jset jne jsgt jsge jlt jle jslt jsle   dst, src|imm, target
    jeq32 ... jsle32                 the JMP32 forms (compare low 32 bits)
Calls:
    call N              helper call, src 0, imm = N
    call local target   program-local call, src 1, imm = pc-relative offset
    call btf N          helper by BTF id, src 2 (for rejection tests)
    callx rN            opcode 0x8d, helper id held in rN (dst_reg field)
    exit
Repetition:
    .rep N  ...  .endr   repeat the enclosed lines N times (no labels inside)
Escapes for encodings the syntax cannot express:
    .raw 95 00 00 00 00 00 00 00     exactly 8 hex bytes (spaces optional)
    .insn OPCODE, DST, SRC, OFF, IMM all numeric (registers as numbers 0..15
                                     or rN), e.g. `.insn 0xbc, 0, 1, 32, 0`
"""

import re
import sys

ALU_OPS = {
    "add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40,
    "and": 0x50, "lsh": 0x60, "rsh": 0x70, "mod": 0x90, "xor": 0xa0,
    "mov": 0xb0, "arsh": 0xc0,
}
SIGNED_ALU = {"sdiv": 0x30, "smod": 0x90}
JMP_OPS = {
    "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50,
    "jsgt": 0x60, "jsge": 0x70, "jlt": 0xa0, "jle": 0xb0, "jslt": 0xc0,
    "jsle": 0xd0,
}
LDX_SIZES = {"ldxw": 0x00, "ldxh": 0x08, "ldxb": 0x10, "ldxdw": 0x18}
LDXSX_SIZES = {"ldxsw": 0x00, "ldxsh": 0x08, "ldxsb": 0x10}
ST_SIZES = {"stw": 0x00, "sth": 0x08, "stb": 0x10, "stdw": 0x18}
STX_SIZES = {"stxw": 0x00, "stxh": 0x08, "stxb": 0x10, "stxdw": 0x18}
ATOMIC_OPS = {
    "add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xa0,
    "fetch_add": 0x01, "fetch_or": 0x41, "fetch_and": 0x51,
    "fetch_xor": 0xa1, "xchg": 0xe1, "cmpxchg": 0xf1,
}

CLS_LD, CLS_LDX, CLS_ST, CLS_STX = 0x00, 0x01, 0x02, 0x03
CLS_ALU, CLS_JMP, CLS_JMP32, CLS_ALU64 = 0x04, 0x05, 0x06, 0x07
SRC_X = 0x08
MODE_MEM, MODE_MEMSX, MODE_ATOMIC = 0x60, 0x80, 0xc0


class AsmError(Exception):
    pass


def parse_int(text):
    text = text.strip().replace("_", "")
    try:
        return int(text, 0)
    except ValueError:
        raise AsmError("bad number %r" % text)


def parse_reg(text):
    m = re.fullmatch(r"r(\d+)", text.strip().lower())
    if not m:
        raise AsmError("bad register %r" % text)
    n = int(m.group(1))
    if n > 10:
        raise AsmError("register %r out of range (use .raw/.insn)" % text)
    return n


def is_reg(text):
    return re.fullmatch(r"r\d+", text.strip().lower()) is not None


def imm32(value):
    if not -(1 << 31) <= value <= 0xffffffff:
        raise AsmError("immediate %d does not fit in 32 bits" % value)
    return value & 0xffffffff


def off16(value):
    if not -(1 << 15) <= value <= 0xffff:
        raise AsmError("offset %d does not fit in 16 bits" % value)
    return value & 0xffff


def parse_mem(text):
    """'[r1+4]' -> (1, 4)"""
    m = re.fullmatch(r"\[\s*(r\d+)\s*(?:([+-])\s*(\w+)\s*)?\]", text.strip().lower())
    if not m:
        raise AsmError("bad memory operand %r" % text)
    reg = parse_reg(m.group(1))
    off = 0
    if m.group(2):
        off = parse_int(m.group(3))
        if m.group(2) == "-":
            off = -off
    return reg, off


def split_operands(text):
    """Split on commas that are not inside brackets."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def encode(opcode, dst=0, src=0, off=0, imm=0):
    return bytes([opcode & 0xff, ((src & 0xf) << 4) | (dst & 0xf)]) + \
        off16(off).to_bytes(2, "little") + imm32(imm).to_bytes(4, "little")


class Item:
    """One source instruction; 'size' in 8-byte slots; 'build(pc, labels)'."""

    def __init__(self, size, build, line):
        self.size, self.build, self.line = size, build, line


def target_offset(target, pc, labels, size=1):
    """Jump/call target relative to the instruction after this one."""
    target = target.strip()
    if re.fullmatch(r"[+-]\s*\w+", target):
        return parse_int(target.replace(" ", ""))
    if target not in labels:
        raise AsmError("unknown label %r" % target)
    return labels[target] - (pc + size)


def parse_line(mnem, ops, lineno):
    """Return an Item for one instruction."""
    m = mnem.lower()
    n = len(ops)

    def need(k):
        if n != k:
            raise AsmError("%s expects %d operand(s), got %d" % (m, k, n))

    def fixed(data):
        return Item(len(data) // 8, lambda pc, labels: data, lineno)

    # --- escapes
    if m == ".raw":
        hexs = "".join(ops).replace(" ", "")
        if not re.fullmatch(r"[0-9a-fA-F]{16}", hexs):
            raise AsmError(".raw needs exactly 8 hex bytes")
        return fixed(bytes.fromhex(hexs))
    if m == ".insn":
        need(5)
        vals = [parse_reg_any(x) if i in (1, 2) else parse_int(x)
                for i, x in enumerate(ops)]
        return fixed(encode(vals[0], vals[1], vals[2], vals[3], vals[4]))

    # --- ALU
    base, wide = m, True
    if m.endswith("32") and m[:-2] in list(ALU_OPS) + list(SIGNED_ALU) + ["neg"]:
        base, wide = m[:-2], False
    cls = CLS_ALU64 if wide else CLS_ALU
    if base in ALU_OPS or base in SIGNED_ALU:
        need(2)
        code = ALU_OPS.get(base, SIGNED_ALU.get(base))
        off = 1 if base in SIGNED_ALU else 0
        dst = parse_reg(ops[0])
        if is_reg(ops[1]):
            return fixed(encode(code | SRC_X | cls, dst, parse_reg(ops[1]), off, 0))
        return fixed(encode(code | cls, dst, 0, off, parse_int(ops[1])))
    if base == "neg":
        need(1)
        return fixed(encode(0x80 | cls, parse_reg(ops[0])))
    mm = re.fullmatch(r"movsx(8|16|32)(_32)?", m)
    if mm:
        need(2)
        cls = CLS_ALU if mm.group(2) else CLS_ALU64
        return fixed(encode(0xb0 | SRC_X | cls, parse_reg(ops[0]),
                            parse_reg(ops[1]), int(mm.group(1)), 0))
    mm = re.fullmatch(r"(le|be|bswap)(16|32|64)", m)
    if mm:
        need(1)
        opc = {"le": 0xd4, "be": 0xdc, "bswap": 0xd7}[mm.group(1)]
        return fixed(encode(opc, parse_reg(ops[0]), 0, 0, int(mm.group(2))))

    # --- loads / stores
    if m in LDX_SIZES or m in LDXSX_SIZES:
        need(2)
        mode = MODE_MEM if m in LDX_SIZES else MODE_MEMSX
        size = LDX_SIZES.get(m, LDXSX_SIZES.get(m))
        src, off = parse_mem(ops[1])
        return fixed(encode(mode | size | CLS_LDX, parse_reg(ops[0]), src, off, 0))
    if m in ST_SIZES:
        need(2)
        dst, off = parse_mem(ops[0])
        return fixed(encode(MODE_MEM | ST_SIZES[m] | CLS_ST, dst, 0, off,
                            parse_int(ops[1])))
    if m in STX_SIZES:
        need(2)
        dst, off = parse_mem(ops[0])
        return fixed(encode(MODE_MEM | STX_SIZES[m] | CLS_STX, dst,
                            parse_reg(ops[1]), off, 0))
    if m == "lddw":
        need(2)
        v = parse_int(ops[1])
        if not -(1 << 63) <= v < (1 << 64):
            raise AsmError("lddw value out of range")
        v &= (1 << 64) - 1
        data = encode(0x18, parse_reg(ops[0]), 0, 0, v & 0xffffffff) + \
            encode(0, 0, 0, 0, v >> 32)
        return fixed(data)
    if m == "lock":
        # ops[0] is "OP [mem]" -- re-split
        raise AsmError("internal: lock handled by caller")

    # --- jumps
    if m in ("ja", "ja32"):
        need(1)
        t = ops[0]
        if m == "ja":
            return Item(1, lambda pc, labels: encode(
                0x05, 0, 0, target_offset(t, pc, labels), 0), lineno)
        return Item(1, lambda pc, labels: encode(
            0x06, 0, 0, 0, target_offset(t, pc, labels)), lineno)
    jbase, jcls = m, CLS_JMP
    if m.endswith("32") and m[:-2] in JMP_OPS:
        jbase, jcls = m[:-2], CLS_JMP32
    if jbase in JMP_OPS:
        need(3)
        dst = parse_reg(ops[0])
        t = ops[2]
        if is_reg(ops[1]):
            src = parse_reg(ops[1])
            return Item(1, lambda pc, labels: encode(
                JMP_OPS[jbase] | SRC_X | jcls, dst, src,
                target_offset(t, pc, labels), 0), lineno)
        imm = parse_int(ops[1])
        return Item(1, lambda pc, labels: encode(
            JMP_OPS[jbase] | jcls, dst, 0, target_offset(t, pc, labels), imm),
            lineno)
    if m == "call":
        need(1)
        words = ops[0].split(None, 1)
        if words[0].lower() == "local":
            t = words[1]
            return Item(1, lambda pc, labels: encode(
                0x85, 0, 1, 0, target_offset(t, pc, labels)), lineno)
        if words[0].lower() == "btf":
            return fixed(encode(0x85, 0, 2, 0, parse_int(words[1])))
        return fixed(encode(0x85, 0, 0, 0, parse_int(ops[0])))
    if m == "callx":
        need(1)
        return fixed(encode(0x8d, parse_reg(ops[0]), 0, 0, 0))
    if m == "exit":
        need(0)
        return fixed(encode(0x95))
    raise AsmError("unknown mnemonic %r" % mnem)


def parse_reg_any(text):
    t = text.strip().lower()
    if t.startswith("r"):
        n = int(t[1:])
    else:
        n = parse_int(t)
    if not 0 <= n <= 15:
        raise AsmError("register field %r out of range" % text)
    return n


def parse_lock(rest, lineno):
    m = re.fullmatch(r"(\w+)\s+(.*)", rest.strip())
    if not m:
        raise AsmError("bad atomic instruction")
    op = m.group(1).lower()
    size = 0x18
    if op.endswith("32"):
        op, size = op[:-2], 0x00
    if op not in ATOMIC_OPS:
        raise AsmError("unknown atomic op %r" % op)
    ops = split_operands(m.group(2))
    if len(ops) != 2:
        raise AsmError("atomic op expects [dst+off], src")
    dst, off = parse_mem(ops[0])
    data = encode(MODE_ATOMIC | size | CLS_STX, dst, parse_reg(ops[1]), off,
                  ATOMIC_OPS[op])
    return Item(1, lambda pc, labels: data, lineno)


def expand_rep(text):
    """Expand `.rep N` ... `.endr` blocks; keeps original line numbers."""
    out, block, count, start = [], None, 0, 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        word = raw.split("#", 1)[0].strip().split(None, 1)
        if word and word[0].lower() == ".rep":
            if block is not None:
                raise AsmError("line %d: nested .rep" % lineno)
            if len(word) != 2:
                raise AsmError("line %d: .rep needs a count" % lineno)
            block, count, start = [], parse_int(word[1]), lineno
            continue
        if word and word[0].lower() == ".endr":
            if block is None:
                raise AsmError("line %d: .endr without .rep" % lineno)
            out.extend(block * count)
            block = None
            continue
        (out if block is None else block).append((lineno, raw))
    if block is not None:
        raise AsmError("line %d: .rep without .endr" % start)
    return out


def assemble(text):
    items, labels, pc = [], {}, 0
    for lineno, raw in expand_rep(text):
        line = raw.split("#", 1)[0].strip()
        try:
            while True:
                lm = re.match(r"([A-Za-z_.][\w.]*)\s*:(.*)", line)
                if not lm or lm.group(1).lower() in (".raw", ".insn"):
                    break
                if lm.group(1) in labels:
                    raise AsmError("duplicate label %r" % lm.group(1))
                labels[lm.group(1)] = pc
                line = lm.group(2).strip()
            if not line:
                continue
            parts = line.split(None, 1)
            mnem = parts[0]
            rest = parts[1] if len(parts) > 1 else ""
            if mnem.lower() == "lock":
                item = parse_lock(rest, lineno)
            else:
                item = parse_line(mnem, split_operands(rest), lineno)
        except AsmError as e:
            raise AsmError("line %d: %s: %s" % (lineno, raw.strip(), e))
        items.append((pc, item))
        pc += item.size
    out = b""
    for pc, item in items:
        try:
            out += item.build(pc, labels)
        except AsmError as e:
            raise AsmError("line %d: %s" % (item.line, e))
    return out


def to_hex(code):
    return " ".join("%02x" % b for b in code)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        sys.stderr.write("usage: asm.py [FILE]\n")
        return 2
    text = open(argv[1]).read() if len(argv) == 2 else sys.stdin.read()
    try:
        print(to_hex(assemble(text)))
    except AsmError as e:
        sys.stderr.write("asm.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
