# 64-bit atomics: STX ATOMIC DW (opcode 0xdb).  RFC 9669 5.3: imm = ADD 0x00,
# OR 0x40, AND 0x50, XOR 0xa0, optionally | FETCH 0x01 (src := old value);
# XCHG 0xe1 (swap src and memory); CMPXCHG 0xf1 (compare memory with r0, store
# src on match; r0 := old value, in either case).

== add
-- asm
stdw [r10-8], 10
mov r2, 5
lock add [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 15

== add-leaves-src-unchanged
-- asm
stdw [r10-8], 10
mov r2, 5
lock add [r10-8], r2
mov r0, r2
exit
-- result 5

== add-carries-into-upper-half
-- asm
lddw r1, 0xffffffff
stxdw [r10-8], r1
mov r2, 1
lock add [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x100000000

== add-negative
-- asm
stdw [r10-8], 5
mov r2, -10
lock add [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result -5

== add-on-input-memory
-- mem
01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00
-- asm
mov r2, 0x41
lock add [r1+8], r2
ldxdw r0, [r1+8]
exit
-- result 0x43

== add-unaligned-offset-on-input-memory
-- mem
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
-- asm
stdw [r1+8], 1
lock add [r1+8], r1
ldxdw r0, [r1+8]
sub r0, r1
exit
-- result 1

== fetch-add-returns-old
-- asm
stdw [r10-8], 10
mov r2, 5
lock fetch_add [r10-8], r2
mov r0, r2
exit
-- result 10

== fetch-add-updates-memory
-- asm
stdw [r10-8], 10
mov r2, 5
lock fetch_add [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 15

== fetch-add-full-64-bit-old-value
-- asm
lddw r1, 0x8000000000000001
stxdw [r10-8], r1
mov r3, 1
lock fetch_add [r10-8], r3
mov r0, r3
exit
-- result 0x8000000000000001

== or
-- asm
stdw [r10-8], 0xf0
lddw r2, 0x0f0000000000000f
lock or [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x0f000000000000ff

== fetch-or
-- asm
stdw [r10-8], 0xf0
mov r2, 0x0f
lock fetch_or [r10-8], r2
ldxdw r0, [r10-8]
lsh r0, 16
or r0, r2
exit
-- result 0xff00f0

== and
-- asm
lddw r1, 0xff00ff00ff00ff00
stxdw [r10-8], r1
lddw r2, 0x0ff00ff00ff00ff0
lock and [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x0f000f000f000f00

== fetch-and
-- asm
lddw r1, 0xff00ff00ff00ff00
stxdw [r10-8], r1
lddw r2, 0x0ff00ff00ff00ff0
lock fetch_and [r10-8], r2
mov r0, r2
exit
-- result 0xff00ff00ff00ff00

== fetch-and-memory
-- asm
lddw r1, 0xff00ff00ff00ff00
stxdw [r10-8], r1
mov r2, -256
lock fetch_and [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0xff00ff00ff00ff00

== xor
-- asm
lddw r1, 0xaaaaaaaaaaaaaaaa
stxdw [r10-8], r1
mov r2, -1
lock xor [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x5555555555555555

== fetch-xor
-- asm
lddw r1, 0xaaaaaaaaaaaaaaaa
stxdw [r10-8], r1
mov r2, -1
lock fetch_xor [r10-8], r2
ldxdw r3, [r10-8]
xor r2, r3
mov r0, r2
exit
-- result 0xffffffffffffffff

== fetch-xor-old-value
-- asm
stdw [r10-8], 0x1234
mov r2, 0x1111
lock fetch_xor [r10-8], r2
mov r0, r2
exit
-- result 0x1234

== xchg-memory
-- asm
stdw [r10-8], 0x1111
lddw r2, 0x2222000000002222
lock xchg [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 0x2222000000002222

== xchg-src-gets-old
-- asm
lddw r1, 0x8111000000001111
stxdw [r10-8], r1
mov r2, 0x2222
lock xchg [r10-8], r2
mov r0, r2
exit
-- result 0x8111000000001111

== cmpxchg-match-stores
-- asm
stdw [r10-8], 5
mov r0, 5
mov r2, 9
lock cmpxchg [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 9

== cmpxchg-match-r0-gets-old
-- asm
stdw [r10-8], 5
mov r0, 5
mov r2, 9
lock cmpxchg [r10-8], r2
exit
-- result 5

== cmpxchg-mismatch-keeps-memory
-- asm
stdw [r10-8], 5
mov r0, 6
mov r2, 9
lock cmpxchg [r10-8], r2
ldxdw r0, [r10-8]
exit
-- result 5

== cmpxchg-mismatch-r0-gets-old
-- asm
stdw [r10-8], 5
mov r0, 6
mov r2, 9
lock cmpxchg [r10-8], r2
exit
-- result 5

== cmpxchg-compares-all-64-bits
-- asm
lddw r1, 0x100000005
stxdw [r10-8], r1
mov r0, 5
mov r2, 9
lock cmpxchg [r10-8], r2
ldxdw r3, [r10-8]
sub r3, r0
mov r0, r3
exit
-- result 0

== cmpxchg-src-unchanged
-- asm
stdw [r10-8], 5
mov r0, 5
mov r2, 9
lock cmpxchg [r10-8], r2
mov r0, r2
exit
-- result 9

== cmpxchg-on-input-memory
-- mem
88 77 66 55 44 33 22 11
-- asm
lddw r0, 0x1122334455667788
lddw r2, 0xabcdef
lock cmpxchg [r1], r2
ldxdw r0, [r1]
exit
-- result 0xabcdef

== atomic-other-registers
-- asm
mov r9, r10
stdw [r9-16], 100
mov r7, 23
lock fetch_add [r9-16], r7
ldxdw r0, [r9-16]
add r0, r7
exit
-- result 223
