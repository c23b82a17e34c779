# The bpf_conformance test helpers:
#  0 gather_bytes(a,b,c,d,e) = (a&0xff)<<32 | (b&0xff)<<24 | (c&0xff)<<16 |
#                              (d&0xff)<<8 | (e&0xff)
#  1 memfrob(ptr, len): xor each byte with 42 (0x2a)
#  2 no_op() = 0
#  3 sqrti(a) = floor(sqrt(a))
#  4 strcmp_ext(a, b) = strcmp(a, b) (only the sign is checked, on the low
#    32 bits, since strcmp returns an int of unspecified magnitude)
#  5 unwind(a) = a; if a == 0 the program ends with r0 = 0

== gather-bytes
-- asm
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
call 0
exit
-- result 0x0102030405

== gather-bytes-masks-each-argument
-- asm
mov r1, 0x1ab
mov r2, -1
mov r3, 0x100
mov r4, 0x7f
lddw r5, 0xffffffffffffff80
call 0
exit
-- result 0xabff007f80

== gather-bytes-zero
-- asm
mov r1, 0
mov r2, 0
mov r3, 0
mov r4, 0
mov r5, 0
call 0
exit
-- result 0

== memfrob-input-memory
-- mem
01 02 03 04
-- asm
mov r6, r1
call 1
ldxw r0, [r6]
exit
-- result 0x2e29282b

== memfrob-partial
-- mem
01 02 03 04
-- asm
mov r6, r1
mov r2, 2
call 1
ldxw r0, [r6]
exit
-- result 0x0403282b

== memfrob-twice-restores
-- mem
01 02 03 04
-- asm
mov r6, r1
mov r7, r2
call 1
mov r1, r6
mov r2, r7
call 1
ldxw r0, [r6]
exit
-- result 0x04030201

== memfrob-length-zero
-- mem
01 02 03 04
-- asm
mov r6, r1
mov r2, 0
call 1
ldxw r0, [r6]
exit
-- result 0x04030201

== memfrob-stack
-- asm
lddw r1, 0x2a2a2a2a2a2a6b2a
stxdw [r10-8], r1
mov r1, r10
add r1, -8
mov r2, 8
call 1
ldxdw r0, [r10-8]
exit
-- result 0x4100

== no-op-returns-zero
-- asm
lddw r0, 0xffffffffffffffff
call 2
exit
-- result 0

== sqrti-0
-- asm
mov r1, 0
call 3
exit
-- result 0

== sqrti-1
-- asm
mov r1, 1
call 3
exit
-- result 1

== sqrti-16
-- asm
mov r1, 16
call 3
exit
-- result 4

== sqrti-17-floors
-- asm
mov r1, 17
call 3
exit
-- result 4

== sqrti-24-floors
-- asm
mov r1, 24
call 3
exit
-- result 4

== sqrti-25
-- asm
mov r1, 25
call 3
exit
-- result 5

== sqrti-1000000
-- asm
mov r1, 1000000
call 3
exit
-- result 1000

== sqrti-0xffffffff
-- asm
mov32 r1, 0xffffffff
call 3
exit
-- result 65535

== sqrti-2-pow-40
-- asm
lddw r1, 0x10000000000
call 3
exit
-- result 0x100000

== sqrti-10-pow-12
-- asm
lddw r1, 1000000000000
call 3
exit
-- result 1000000

== strcmp-equal
-- mem
61 62 63 00 61 62 63 00
-- asm
mov r2, r1
add r2, 4
call 4
exit
-- result 0

== strcmp-less
-- mem
61 62 63 00 61 62 64 00
-- asm
mov r2, r1
add r2, 4
call 4
mov r6, 0
jsge32 r0, 0, +1
mov r6, 1
mov r0, r6
exit
-- result 1

== strcmp-greater
-- mem
61 62 64 00 61 62 63 00
-- asm
mov r2, r1
add r2, 4
call 4
mov r6, 0
jsle32 r0, 0, +1
mov r6, 1
mov r0, r6
exit
-- result 1

== strcmp-prefix-is-less
-- mem
61 62 00 00 61 62 63 00
-- asm
mov r2, r1
add r2, 4
call 4
mov r6, 0
jsge32 r0, 0, +1
mov r6, 1
mov r0, r6
exit
-- result 1

== strcmp-empty-strings
-- mem
00 00
-- asm
mov r2, r1
add r2, 1
call 4
exit
-- result 0

== strcmp-stack-strings
-- asm
stdw [r10-8], 0x00636261
stdw [r10-16], 0x00636261
mov r1, r10
add r1, -8
mov r2, r10
add r2, -16
call 4
exit
-- result 0

== strcmp-stack-vs-memory-differ
-- mem
78 79 7a 00
-- asm
stdw [r10-8], 0x00636261
mov r2, r10
add r2, -8
call 4
mov r6, 0
jsle32 r0, 0, +1
mov r6, 1
mov r0, r6
exit
-- result 1

== unwind-nonzero-returns-argument
-- asm
mov r1, 3
call 5
add r0, 1
exit
-- result 4

== unwind-zero-ends-program
-- asm
mov r1, 0
call 5
mov r0, 99
exit
-- result 0

== unwind-zero-after-work
-- asm
mov r6, 0
loop:
add r6, 1
mov r1, 5
sub r1, r6
call 5
ja loop
-- result 0

== unwind-zero-from-local-function-ends-program
-- asm
mov r6, 7
call local f
mov r0, r6
exit
f:
mov r1, 0
call 5
mov r0, 9
exit
-- result 0
