# LDX / ST / STX in MEM mode, sizes B H W DW, on the input memory (r1 =
# pointer, r2 = length) and on the stack (r10 = frame pointer, 512 bytes
# below it).  RFC 9669 5.1: dst = *(unsigned size *)(src + offset) (loads
# zero-extend); *(size *)(dst + offset) = imm / src.  Little-endian.  For ST
# the 32-bit imm is stored as a `size`-wide value (sign-extended for DW).

== r2-is-memory-length
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
mov r0, r2
exit
-- result 16

== r2-length-one-byte
-- mem
5a
-- asm
mov r0, r2
exit
-- result 1

== ldxb-first
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxb r0, [r1]
exit
-- result 0x11

== ldxb-offset
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxb r0, [r1+9]
exit
-- result 0xaa

== ldxb-last
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 01
-- asm
ldxb r0, [r1+15]
exit
-- result 0x01

== ldxb-zero-extends
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
lddw r0, 0xffffffffffffffff
ldxb r0, [r1+9]
exit
-- result 0xaa

== ldxh
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxh r0, [r1]
exit
-- result 0x2211

== ldxh-high-bit-zero-extends
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxh r0, [r1+8]
exit
-- result 0xaa99

== ldxh-unaligned
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxh r0, [r1+1]
exit
-- result 0x3322

== ldxh-last
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxh r0, [r1+14]
exit
-- result 0x00ff

== ldxw
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxw r0, [r1]
exit
-- result 0x44332211

== ldxw-offset-4
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxw r0, [r1+4]
exit
-- result 0x88776655

== ldxw-last
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxw r0, [r1+12]
exit
-- result 0x00ffeedd

== ldxw-unaligned-high-bit
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxw r0, [r1+9]
exit
-- result 0xddccbbaa

== ldxdw
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxdw r0, [r1]
exit
-- result 0x8877665544332211

== ldxdw-last
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxdw r0, [r1+8]
exit
-- result 0x00ffeeddccbbaa99

== ldxdw-unaligned
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
ldxdw r0, [r1+3]
exit
-- result 0xbbaa998877665544

== ldx-negative-offset
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
add r1, 8
ldxb r0, [r1-8]
exit
-- result 0x11

== ldx-negative-offset-dw
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
mov r3, r1
add r3, 16
ldxdw r0, [r3-16]
exit
-- result 0x8877665544332211

== ldx-pointer-arithmetic-with-r2
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
add r1, r2
ldxb r0, [r1-2]
exit
-- result 0xff

== ldxdw-dst-equals-src
-- mem
01 00 00 00 00 00 00 80
-- asm
ldxdw r1, [r1]
mov r0, r1
exit
-- result 0x8000000000000001

== ldx-into-every-register
-- mem
01 02 03 04 05 06 07 08 09 0a
-- asm
mov r9, r1
ldxb r0, [r9+0]
ldxb r1, [r9+1]
ldxb r2, [r9+2]
ldxb r3, [r9+3]
ldxb r4, [r9+4]
ldxb r5, [r9+5]
ldxb r6, [r9+6]
ldxb r7, [r9+7]
ldxb r8, [r9+8]
ldxb r9, [r9+9]
add r0, r1
add r0, r2
add r0, r3
add r0, r4
add r0, r5
add r0, r6
add r0, r7
add r0, r8
add r0, r9
exit
-- result 55

== stb-imm
-- mem
11 22 33 44 55 66 77 88
-- asm
stb [r1+1], 0xff
ldxdw r0, [r1]
exit
-- result 0x887766554433ff11

== stb-imm-truncated-to-byte
-- mem
11 22 33 44 55 66 77 88
-- asm
stb [r1], -2
ldxdw r0, [r1]
exit
-- result 0x88776655443322fe

== sth-imm
-- mem
11 22 33 44 55 66 77 88
-- asm
sth [r1+2], 0x1234
ldxdw r0, [r1]
exit
-- result 0x8877665512342211

== sth-imm-neg
-- mem
11 22 33 44 55 66 77 88
-- asm
sth [r1+6], -1
ldxdw r0, [r1]
exit
-- result 0xffff665544332211

== stw-imm
-- mem
11 22 33 44 55 66 77 88
-- asm
stw [r1+4], 0xdeadbeef
ldxdw r0, [r1]
exit
-- result 0xdeadbeef44332211

== stw-imm-neg
-- mem
11 22 33 44 55 66 77 88
-- asm
stw [r1], -2
ldxdw r0, [r1]
exit
-- result 0x88776655fffffffe

== stdw-imm-neg-sign-extended
-- mem
11 22 33 44 55 66 77 88
-- asm
stdw [r1], -1
ldxdw r0, [r1]
exit
-- result 0xffffffffffffffff

== stdw-imm-0x80000000-sign-extended
-- mem
11 22 33 44 55 66 77 88
-- asm
stdw [r1], 0x80000000
ldxdw r0, [r1]
exit
-- result 0xffffffff80000000

== stdw-imm-positive-clears-upper-bytes
-- mem
11 22 33 44 55 66 77 88
-- asm
stdw [r1], 0x7fffffff
ldxdw r0, [r1]
exit
-- result 0x7fffffff

== stdw-imm-unaligned
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
stdw [r1+5], 0x01020304
ldxdw r0, [r1+8]
exit
-- result 0x00ffee0000000001

== stxb
-- mem
11 22 33 44 55 66 77 88
-- asm
lddw r2, 0x1234567
stxb [r1], r2
ldxw r0, [r1]
exit
-- result 0x44332267

== stxh
-- mem
11 22 33 44 55 66 77 88
-- asm
mov r3, 0xabcd
stxh [r1+6], r3
ldxdw r0, [r1]
exit
-- result 0xabcd665544332211

== stxw
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
lddw r3, 0x1122334455667788
stxw [r1+8], r3
ldxdw r0, [r1+8]
exit
-- result 0x00ffeedd55667788

== stxdw
-- mem
11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00
-- asm
lddw r3, 0xfedcba9876543210
stxdw [r1+8], r3
ldxdw r0, [r1+8]
exit
-- result 0xfedcba9876543210

== stxdw-little-endian-bytes
-- mem
00 00 00 00 00 00 00 00
-- asm
lddw r3, 0x1122334455667788
stxdw [r1], r3
ldxb r0, [r1]
ldxb r4, [r1+7]
lsh r4, 8
or r0, r4
exit
-- result 0x1188

== stx-negative-offset
-- mem
00 00 00 00 00 00 00 00
-- asm
mov r3, 0x5a
add r1, 8
stxb [r1-8], r3
ldxdw r0, [r1-8]
exit
-- result 0x5a

== store-then-load-whole-memory
-- mem
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
-- asm
mov r0, 0
stb [r1+15], 1
sth [r1+12], 0x0203
stw [r1+8], 0x04050607
stdw [r1], 0x08090a0b
ldxdw r0, [r1]
ldxdw r3, [r1+8]
add r0, r3
exit
-- result 0x010002030c0e1012

== stack-stxdw-ldxdw
-- asm
lddw r1, 0x1122334455667788
stxdw [r10-8], r1
ldxdw r0, [r10-8]
exit
-- result 0x1122334455667788

== stack-bottom
-- asm
stdw [r10-512], 7
ldxdw r0, [r10-512]
exit
-- result 7

== stack-top-byte
-- asm
stb [r10-1], 0x5a
ldxb r0, [r10-1]
exit
-- result 0x5a

== stack-little-endian-bytes
-- asm
lddw r1, 0x1122334455667788
stxdw [r10-8], r1
ldxb r0, [r10-8]
ldxb r2, [r10-1]
lsh r2, 8
or r0, r2
exit
-- result 0x1188

== stack-sth-ldxh-zero-extends
-- asm
sth [r10-2], 0x8000
ldxh r0, [r10-2]
exit
-- result 0x8000

== stack-stw-ldxw
-- asm
stw [r10-4], -1
ldxw r0, [r10-4]
exit
-- result 0xffffffff

== stack-partial-overwrite
-- asm
stdw [r10-8], 0
sth [r10-8], -1
ldxdw r0, [r10-8]
exit
-- result 0xffff

== stack-via-copied-frame-pointer
-- asm
mov r3, r10
add r3, -16
stw [r3+0], 0x01020304
stw [r3+4], 0x05060708
ldxdw r0, [r10-16]
exit
-- result 0x0506070801020304

== stack-all-512-bytes
# write the whole frame 8 bytes at a time, then sum it back
-- asm
mov r1, r10
mov r2, 64
wloop:
sub r1, 8
stxdw [r1+0], r2
sub r2, 1
jne r2, 0, wloop
mov r0, 0
mov r1, r10
sub r1, 512
mov r2, 64
rloop:
ldxdw r3, [r1+0]
add r0, r3
add r1, 8
sub r2, 1
jne r2, 0, rloop
exit
-- result 2080

== stack-and-memory-independent
-- mem
aa aa aa aa aa aa aa aa
-- asm
stdw [r10-8], 0x11
ldxdw r0, [r1]
ldxdw r3, [r10-8]
add r0, r3
exit
-- result 0xaaaaaaaaaaaaaabb

== memory-argument-large
-- mem
00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f
40 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55 56 57 58 59 5a 5b 5c 5d 5e 5f
60 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 75 76 77 78 79 7a 7b 7c 7d 7e 7f
80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f 90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f
a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af b0 b1 b2 b3 b4 b5 b6 b7 b8 b9 ba bb bc bd be bf
c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 ca cb cc cd ce cf d0 d1 d2 d3 d4 d5 d6 d7 d8 d9 da db dc dd de df
e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 ea eb ec ed ee ef f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff
-- asm
mov r0, 0
mov r3, r1
add r3, r2
loop:
ldxb r4, [r1]
add r0, r4
add r1, 1
jlt r1, r3, loop
exit
-- result 32640
