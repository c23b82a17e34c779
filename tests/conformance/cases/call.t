# CALL (helper, src 0) and EXIT mechanics.  RFC 9669 4.3 / calling
# convention: r0 holds the return value; r1-r5 are arguments (clobbered by a
# call, so never relied on afterwards); r6-r9 are callee-saved; r10 is the
# read-only frame pointer.  Helper 2 = no_op (returns 0), 3 = sqrti.

== exit-returns-r0
-- asm
mov r0, 42
exit
-- result 42

== exit-returns-full-64-bits
-- asm
lddw r0, 0xfedcba9876543210
exit
-- result 0xfedcba9876543210

== exit-stops-execution
-- asm
mov r0, 1
exit
mov r0, 2
exit
-- result 1

== helper-sets-r0
-- asm
mov r0, 5
call 2
exit
-- result 0

== helper-result-used
-- asm
mov r1, 81
call 3
exit
-- result 9

== helper-then-continue
-- asm
mov r1, 16
call 3
add r0, 1
exit
-- result 5

== helper-preserves-r6-r9
-- asm
mov r6, 1
mov r7, 2
lddw r8, 0x300000000
mov r9, -1
call 2
mov r0, r6
add r0, r7
add r0, r8
add r0, r9
exit
-- result 0x300000002

== helper-preserves-r10
-- asm
mov r6, r10
call 2
sub r6, r10
mov r0, r6
exit
-- result 0

== helper-preserves-stack
-- asm
stdw [r10-8], 123
stdw [r10-512], 456
call 2
ldxdw r0, [r10-8]
ldxdw r1, [r10-512]
add r0, r1
exit
-- result 579

== helper-preserves-memory
-- mem
01 02 03 04
-- asm
mov r6, r1
call 2
ldxw r0, [r6]
exit
-- result 0x04030201

== helper-in-loop
-- asm
mov r6, 10
mov r7, 0
loop:
mov r1, 16
call 3
add r7, r0
sub r6, 1
jne r6, 0, loop
mov r0, r7
exit
-- result 40

== helper-argument-is-r1
-- asm
mov r1, 100
mov r2, 4
mov r3, 9
call 3
exit
-- result 10
