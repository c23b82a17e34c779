# Run-time faults: every load/store/atomic must lie entirely inside the input
# memory [r1, r1 + r2) or inside the current stack frame [r10 - 512, r10);
# anything else (forwards or backwards overruns, straddling accesses, no
# memory at all, null or wild pointers) fails with exit 1.  Each fault case is
# paired with an in-bounds control case that must succeed.

== control-last-byte
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxb r0, [r1+7]
exit
-- result 7

== ldxb-one-past-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxb r0, [r1+8]
exit
-- error

== ldxb-one-before-start
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxb r0, [r1-1]
exit
-- error

== ldxh-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxh r0, [r1+7]
exit
-- error

== ldxw-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxw r0, [r1+5]
exit
-- error

== control-ldxw-last-word
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxw r0, [r1+4]
exit
-- result 0x07060504

== ldxdw-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxdw r0, [r1+1]
exit
-- error

== ldxdw-straddles-start
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxdw r0, [r1-1]
exit
-- error

== ldxsw-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxsw r0, [r1+6]
exit
-- error

== ldxsb-one-past-end
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxsb r0, [r1+8]
exit
-- error

== ldxb-far-offset
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxb r0, [r1+0x7fff]
exit
-- error

== ldxb-far-negative-offset
-- mem
00 01 02 03 04 05 06 07
-- asm
ldxb r0, [r1-0x8000]
exit
-- error

== ldxb-pointer-past-end-by-arithmetic
-- mem
00 01 02 03 04 05 06 07
-- asm
add r1, r2
ldxb r0, [r1+0]
exit
-- error

== ldxb-pointer-wraps-around
-- mem
00 01 02 03 04 05 06 07
-- asm
lddw r3, 0xffffffffffffffff
add r1, r3
add r1, r3
ldxb r0, [r1+1]
exit
-- error

== control-pointer-wraps-back-in-range
-- mem
00 01 02 03 04 05 06 07
-- asm
lddw r3, 0xffffffffffffffff
add r1, r3
add r1, r3
ldxb r0, [r1+4]
exit
-- result 2

== stb-one-past-end
-- mem
00 01 02 03 04 05 06 07
-- asm
stb [r1+8], 1
mov r0, 0
exit
-- error

== stw-before-start
-- mem
00 01 02 03 04 05 06 07
-- asm
stw [r1-4], 0
mov r0, 0
exit
-- error

== stxdw-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
stxdw [r1+4], r2
mov r0, 0
exit
-- error

== stxh-straddles-start
-- mem
00 01 02 03 04 05 06 07
-- asm
stxh [r1-1], r2
mov r0, 0
exit
-- error

== atomic64-straddles-end
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r2, 1
lock add [r1+4], r2
mov r0, 0
exit
-- error

== atomic32-one-past-end
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r2, 1
lock fetch_add32 [r1+8], r2
mov r0, 0
exit
-- error

== cmpxchg-before-start
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r2, 1
mov r0, 0
lock cmpxchg [r1-8], r2
exit
-- error

== xchg32-stack-above-top
-- asm
mov r2, 1
lock xchg32 [r10-2], r2
mov r0, 0
exit
-- error

== no-memory-ldxb-r1
-- asm
ldxb r0, [r1]
exit
-- error

== no-memory-r2-is-zero
-- asm
mov r0, r2
exit
-- result 0

== no-memory-stxb-r1
-- asm
stxb [r1], r2
mov r0, 0
exit
-- error

== null-pointer-load
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r3, 0
ldxb r0, [r3]
exit
-- error

== wild-pointer-load
-- mem
00 01 02 03 04 05 06 07
-- asm
lddw r3, 0x4000000000000000
ldxdw r0, [r3]
exit
-- error

== integer-as-pointer-store
-- asm
mov r3, 4096
stdw [r3], 1
mov r0, 0
exit
-- error

== control-stack-top-byte
-- asm
stb [r10-1], 9
ldxb r0, [r10-1]
exit
-- result 9

== stack-ldxb-at-r10
-- asm
ldxb r0, [r10]
exit
-- error

== stack-stb-at-r10
-- asm
stb [r10], 1
mov r0, 0
exit
-- error

== stack-ldxdw-straddles-top
-- asm
ldxdw r0, [r10-4]
exit
-- error

== stack-stxw-straddles-top
-- asm
stxw [r10-2], r1
mov r0, 0
exit
-- error

== stack-above-top-via-pointer
-- asm
mov r3, r10
add r3, 8
stxdw [r3-8], r1
mov r0, 0
exit
-- error

== control-stack-bottom
-- asm
stdw [r10-512], 3
ldxdw r0, [r10-512]
exit
-- result 3

== stack-ldxb-below-bottom
-- asm
ldxb r0, [r10-513]
exit
-- error

== stack-ldxdw-straddles-bottom
-- asm
ldxdw r0, [r10-516]
exit
-- error

== stack-stdw-below-bottom
-- asm
stdw [r10-520], 1
mov r0, 0
exit
-- error

== stack-far-below
-- asm
ldxb r0, [r10-4096]
exit
-- error

== stack-below-bottom-via-pointer
-- asm
mov r3, r10
sub r3, 512
stb [r3-1], 1
mov r0, 0
exit
-- error

== stack-atomic-below-bottom
-- asm
mov r2, 1
lock add [r10-520], r2
mov r0, 0
exit
-- error

== fault-after-side-effects
-- mem
00 01 02 03 04 05 06 07
-- asm
stb [r1], 0xff
mov r0, 1
ldxb r0, [r1+8]
exit
-- error

== fault-in-loop-walking-off-the-end
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r0, 0
loop:
ldxb r3, [r1]
add r0, r3
add r1, 1
ja loop
-- error

== fault-only-when-executed
-- mem
00 01 02 03 04 05 06 07
-- asm
mov r0, 5
ja +1
ldxb r0, [r1+100]
exit
-- result 5

== write-r10-via-atomic-fetch
# r10 is read-only; a FETCH atomic with src = r10 would overwrite it
-- asm
stdw [r10-8], 0
lock fetch_add [r10-8], r10
mov r0, 0
exit
-- error

== write-r10-via-xchg
-- asm
stdw [r10-8], 0
lock xchg [r10-8], r10
mov r0, 0
exit
-- error
