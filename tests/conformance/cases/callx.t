# callx (opcode 0x8d): helper call through a register; the helper id is held
# in the register named by dst_reg.  Same helpers and conventions as `call`.

== callx-no-op
-- asm
mov r2, 2
mov r0, 5
callx r2
exit
-- result 0

== callx-sqrti
-- asm
mov r1, 49
mov r8, 3
callx r8
exit
-- result 7

== callx-gather-bytes-id-zero
-- asm
mov r6, 0
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
callx r6
exit
-- result 0x0102030405

== callx-memfrob
-- mem
2a 2a 2a 2b
-- asm
mov r6, r1
mov r9, 1
callx r9
ldxw r0, [r6]
exit
-- result 0x01000000

== callx-id-in-r0
-- asm
mov r1, 64
mov r0, 3
callx r0
exit
-- result 8

== callx-preserves-r6-r9
-- asm
mov r6, 1
mov r7, 2
mov r8, 3
mov r9, 2
callx r9
add r0, r6
add r0, r7
add r0, r8
add r0, r9
exit
-- result 8

== callx-unwind-zero-ends-program
-- asm
mov r1, 0
mov r7, 5
callx r7
mov r0, 9
exit
-- result 0

== callx-unwind-nonzero
-- asm
mov r1, 6
mov r7, 5
callx r7
add r0, 1
exit
-- result 7

== callx-helper-chosen-at-run-time
-- asm
mov r6, 3
mov r1, 100
callx r6
mov r6, 2
add r0, 0
mov r7, r0
callx r6
add r0, r7
exit
-- result 10

== callx-unknown-helper-id
-- asm
mov r3, 99
callx r3
exit
-- error

== callx-negative-helper-id
-- asm
mov r3, -1
callx r3
exit
-- error

== callx-helper-id-6
-- asm
mov r3, 6
callx r3
exit
-- error

== callx-frame-pointer-as-id
-- asm
callx r10
exit
-- error
