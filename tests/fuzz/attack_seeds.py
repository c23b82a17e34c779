#!/usr/bin/env python3
"""Writes the attack-shape seeds of tests/fuzz/corpus/verifier/ (attack_*):
programs in fuzz_verifier's input format shaped like the verifier bugs found
so far (an address leaked through a comparison of pointer + unknown number,
an atomic on a spilled stack slot).  A fixed verifier rejects them; mutations
of them probe the same rules.  Usage: tests/fuzz/attack_seeds.py DIR"""
import struct
import sys

ALU64, LDX, STX, ST, JMP = 0x07, 0x61, 0x63, 0x62, 0x05
MOVX, ADDX, SUBX, MOVK, ADDK = 0xbf, 0x0f, 0x1f, 0xb7, 0x07
DW_LDX, DW_STX, DW_ST = 0x79, 0x7b, 0x7a
JNE_K, JGE_X, JLT_K, EXIT = 0x55, 0x3d, 0xa5, 0x95
ATOMIC_DW = 0xdb


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def scan(probe):
    """A loop over the 64 scratch words: x = r2, probe sets r0 = 1."""
    pro = [insn(MOVX, 6, 1), insn(DW_LDX, 7, 1, 16), insn(DW_LDX, 8, 1, 32),
           insn(MOVK, 0), insn(MOVK, 9)]
    loop = [insn(MOVX, 3, 8), insn(ADDX, 3, 9), insn(DW_LDX, 2, 3, 0)] + probe
    loop += [insn(ADDK, 9, imm=8)]
    loop += [insn(JLT_K, 9, off=-(len(loop) + 1), imm=512)]
    return pro + loop + [insn(EXIT)]


SET_R0 = insn(MOVK, 0, imm=1)
SEEDS = {
    "attack_data_plus_x_eq_0": scan([insn(MOVX, 4, 7), insn(ADDX, 4, 2),
                                     insn(JNE_K, 4, off=1), SET_R0]),
    "attack_data_minus_x_eq_0": scan([insn(MOVX, 4, 7), insn(SUBX, 4, 2),
                                      insn(JNE_K, 4, off=1), SET_R0]),
    "attack_stack_plus_x_eq_0": scan([insn(MOVX, 4, 10), insn(ADDX, 4, 2),
                                      insn(JNE_K, 4, off=1), SET_R0]),
    "attack_data_plus_x_wraps": scan([insn(MOVX, 4, 7), insn(ADDX, 4, 2),
                                      insn(JGE_X, 4, 7, off=1), SET_R0]),
    # *(u64 *)(fp - 8) = 1; lock fetch_add *(u64 *)(fp - 8), r0 (verifier crash)
    "attack_atomic_on_spilled_slot": [insn(MOVK, 0), insn(DW_ST, 10, off=-8, imm=1),
                                      insn(ATOMIC_DW, 10, 0, -8, 0x01), insn(EXIT)],
}


def main():
    out = sys.argv[1]
    for name, insns in SEEDS.items():
        hdr = struct.pack("<BBHHHH", 1, 0, len(insns), 0, 0, 0)  # type cq
        with open(f"{out}/{name}", "wb") as f:
            f.write(hdr + b"".join(insns))


if __name__ == "__main__":
    main()
