# 32-bit atomics: STX ATOMIC W (opcode 0xc3).  RFC 9669 5.3: operate on the
# 32-bit word at dst + offset with the low 32 bits of src; FETCH loads the old
# 32-bit value into src zero-extended; CMPXCHG compares the word with the low
# 32 bits of r0 and "the value that was at dst + offset before the operation
# is zero-extended and loaded back to R0".  Neighbouring bytes are untouched.

== add32
-- asm
stdw [r10-8], 0
stw [r10-8], 10
mov r2, 5
lock add32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 15

== add32-wraps-without-carry-into-next-word
-- asm
lddw r1, 0x11111111ffffffff
stxdw [r10-8], r1
mov r2, 1
lock add32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x1111111100000000

== add32-uses-low-half-of-src
-- asm
stdw [r10-8], 0
stw [r10-8], 10
lddw r2, 0x100000002
lock add32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 12

== add32-leaves-src-unchanged
-- asm
stw [r10-8], 10
lddw r2, 0x100000002
lock add32 [r10-8], r2
mov r0, r2
exit
-- result 0x100000002

== add32-upper-word
-- asm
lddw r1, 0x00000005ffffffff
stxdw [r10-8], r1
mov r2, 3
lock add32 [r10-4], r2
ldxdw r0, [r10-8]
exit
-- result 0x00000008ffffffff

== fetch-add32-old-value-zero-extended
-- asm
stw [r10-8], 0x80000000
lddw r2, 0xffffffff00000001
lock fetch_add32 [r10-8], r2
mov r0, r2
exit
-- result 0x80000000

== fetch-add32-memory
-- asm
stdw [r10-8], 0
stw [r10-8], 0x80000000
lddw r2, 0xffffffff00000001
lock fetch_add32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x80000001

== or32
-- asm
lddw r1, 0xaaaaaaaa000000f0
stxdw [r10-8], r1
lddw r2, 0xffffffff0000000f
lock or32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0xaaaaaaaa000000ff

== fetch-or32
-- asm
stw [r10-8], 0xf0
lddw r2, 0xffffffff0000000f
lock fetch_or32 [r10-8], r2
mov r0, r2
exit
-- result 0xf0

== and32
-- asm
lddw r1, 0x12345678ff00ff00
stxdw [r10-8], r1
mov32 r2, 0x0ff00ff0
lock and32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x123456780f000f00

== fetch-and32
-- asm
stw [r10-8], 0xff00ff00
mov32 r2, 0x0ff00ff0
lock fetch_and32 [r10-8], r2
ldxw r3, [r10-8]
lsh r2, 32
or r2, r3
mov r0, r2
exit
-- result 0xff00ff000f000f00

== xor32
-- asm
lddw r1, 0x55555555aaaaaaaa
stxdw [r10-8], r1
mov r2, -1
lock xor32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x5555555555555555

== fetch-xor32
-- asm
stw [r10-8], 0x80000001
mov r2, -1
lock fetch_xor32 [r10-8], r2
mov r0, r2
exit
-- result 0x80000001

== fetch-xor32-memory
-- asm
stw [r10-8], 0x80000001
mov r2, -1
lock fetch_xor32 [r10-8], r2
ldxw r0, [r10-8]
exit
-- result 0x7ffffffe

== xchg32-memory
-- asm
lddw r1, 0x99999999aabbccdd
stxdw [r10-8], r1
lddw r2, 0x1122334455667788
lock xchg32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x9999999955667788

== xchg32-src-gets-old-zero-extended
-- asm
lddw r1, 0x99999999aabbccdd
stxdw [r10-8], r1
lddw r2, 0x1122334455667788
lock xchg32 [r10-8], r2
mov r0, r2
exit
-- result 0xaabbccdd

== cmpxchg32-match-compares-low-half-of-r0
-- asm
lddw r1, 0x4444444400000007
stxdw [r10-8], r1
lddw r0, 0xffffffff00000007
lddw r2, 0x1234567800000009
lock cmpxchg32 [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x4444444400000009

== cmpxchg32-match-r0-gets-old-zero-extended
-- asm
stw [r10-8], 7
lddw r0, 0xffffffff00000007
mov r2, 9
lock cmpxchg32 [r10-8], r2
exit
-- result 7

== cmpxchg32-mismatch-keeps-memory
-- asm
stw [r10-8], 7
mov r0, 8
mov r2, 9
lock cmpxchg32 [r10-8], r2
ldxw r0, [r10-8]
exit
-- result 7

== cmpxchg32-mismatch-r0-gets-old-zero-extended
-- asm
stw [r10-8], 0x80000000
mov r0, -1
mov r2, 9
lock cmpxchg32 [r10-8], r2
exit
-- result 0x80000000

== atomic32-on-input-memory
-- mem
01 00 00 00 ff ff ff ff
-- asm
mov r2, 1
lock add32 [r1+4], r2
ldxdw r0, [r1]
exit
-- result 1

== fetch-add32-on-input-memory
-- mem
ff ff ff ff 10 00 00 00
-- asm
mov r2, 0x20
lock fetch_add32 [r1+4], r2
ldxdw r0, [r1]
add r0, r2
exit
-- result 0x000000310000000f
