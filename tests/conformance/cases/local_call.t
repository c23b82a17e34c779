# Program-local calls: CALL with src 1, imm = target relative to the next
# instruction (RFC 9669 4.3.2); EXIT in the callee returns to the caller.
# Each call gets its own 512-byte stack frame (r10 = its top); r6-r9 are
# preserved across the call; arguments in r1-r5, result in r0; at most 8
# frames (the main program's included).

== call-and-return
-- asm
mov r0, 0
call local f
add r0, 1
exit
f:
mov r0, 41
exit
-- result 42

== raw-imm-offset
-- asm
call local +1
exit
mov r0, 5
exit
-- result 5

== arguments-passed
-- asm
mov r1, 3
mov r2, 4
call local f
exit
f:
mov r0, r1
mul r0, r2
exit
-- result 12

== five-arguments
-- asm
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
call local f
exit
f:
mov r0, r1
add r0, r2
add r0, r3
add r0, r4
add r0, r5
exit
-- result 15

== r6-r9-preserved
-- asm
mov r6, 1
mov r7, 2
mov r8, 3
mov r9, 4
call local f
mov r0, r6
add r0, r7
add r0, r8
add r0, r9
exit
f:
mov r6, 100
mov r7, 100
mov r8, 100
mov r9, 100
mov r0, 0
exit
-- result 10

== r10-restored-after-return
-- asm
mov r6, r10
call local f
sub r6, r10
mov r0, r6
exit
f:
mov r0, 0
exit
-- result 0

== callee-has-own-frame-pointer
-- asm
mov r6, r10
call local f
mov r1, 0
jeq r0, r6, +1
mov r1, 1
mov r0, r1
exit
f:
mov r0, r10
exit
-- result 1

== callee-has-own-stack
-- asm
stdw [r10-8], 0x11
call local f
ldxdw r0, [r10-8]
exit
f:
stdw [r10-8], 0x22
mov r0, 0
exit
-- result 0x11

== callee-stack-512-bytes
-- asm
call local f
exit
f:
stdw [r10-512], 3
stdw [r10-8], 4
ldxdw r0, [r10-512]
ldxdw r1, [r10-8]
add r0, r1
exit
-- result 7

== callee-reads-caller-stack-through-pointer
-- asm
stdw [r10-8], 77
mov r1, r10
add r1, -8
call local f
exit
f:
ldxdw r0, [r1+0]
exit
-- result 77

== callee-writes-caller-stack-through-pointer
-- asm
stdw [r10-8], 0
mov r1, r10
add r1, -8
call local f
ldxdw r0, [r10-8]
exit
f:
stdw [r1+0], 0x55
mov r0, 0
exit
-- result 0x55

== callee-accesses-input-memory
-- mem
10 20 30 40
-- asm
call local f
exit
f:
ldxw r0, [r1]
exit
-- result 0x40302010

== nested-calls
-- asm
mov r0, 0
call local f
add r0, 1
exit
f:
call local g
add r0, 1
exit
g:
mov r0, 5
exit
-- result 7

== backward-call
-- asm
ja main
f:
mov r0, 3
exit
main:
call local f
add r0, 1
exit
-- result 4

== callee-calls-helper
-- asm
mov r1, 144
call local f
add r0, 1
exit
f:
call 3
exit
-- result 13

== callee-with-loop-and-lddw
-- asm
mov r1, 4
call local f
exit
f:
mov r0, 0
loop:
lddw r2, 0x100000000
add r0, r2
sub r1, 1
jne r1, 0, loop
exit
-- result 0x400000000

== recursion-factorial
-- asm
mov r1, 5
call local fact
exit
fact:
mov r0, 1
jle r1, 1, done
mov r6, r1
sub r1, 1
call local fact
mul r0, r6
done:
exit
-- result 120

== recursion-fibonacci-uses-stack
-- asm
mov r1, 6
call local fib
exit
fib:
mov r0, r1
jle r1, 1, done
stxdw [r10-8], r1
sub r1, 1
call local fib
stxdw [r10-16], r0
ldxdw r1, [r10-8]
sub r1, 2
call local fib
ldxdw r1, [r10-16]
add r0, r1
done:
exit
-- result 8

== depth-8-frames-allowed
# main + depth(6) .. depth(0) = 8 frames
-- asm
mov r1, 6
call local depth
exit
depth:
mov r0, 0
jeq r1, 0, done
sub r1, 1
call local depth
add r0, 1
done:
exit
-- result 6

== depth-9-frames-rejected
# main + depth(7) .. depth(0) = 9 frames: more than 8
-- asm
mov r1, 7
call local depth
exit
depth:
mov r0, 0
jeq r1, 0, done
sub r1, 1
call local depth
add r0, 1
done:
exit
-- error

== infinite-recursion
-- asm
call local f
exit
f:
call local f
exit
-- error

== self-call-imm-minus-one
-- asm
mov r0, 0
call local +1
exit
call local -1
exit
-- error

== callee-stack-overrun
-- asm
call local f
exit
f:
ldxb r0, [r10-513]
exit
-- error

== many-sequential-calls-do-not-accumulate-frames
-- asm
mov r6, 20
mov r7, 0
loop:
call local f
add r7, r0
sub r6, 1
jne r6, 0, loop
mov r0, r7
exit
f:
mov r0, 2
exit
-- result 40

== function-called-from-two-sites
-- asm
mov r1, 3
call local sq
mov r6, r0
mov r1, 4
call local sq
add r0, r6
exit
sq:
mov r0, r1
mul r0, r1
exit
-- result 25
