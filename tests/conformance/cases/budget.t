# Instruction budget: 1,000,000 executed instructions by default; a program
# that runs longer (e.g. an infinite loop) fails with exit 1.
# Loop shape used below: 2 setup + 3 per iteration + 1 exit = 3N + 3.

== short-loop-1000
-- asm
mov r0, 0
mov r1, 1000
loop:
add r0, 1
sub r1, 1
jne r1, 0, loop
exit
-- result 1000

== loop-999999-instructions
# N = 333332: 3N + 3 = 999,999 instructions
-- asm
mov r0, 0
mov r1, 333332
loop:
add r0, 1
sub r1, 1
jne r1, 0, loop
exit
-- result 333332

== loop-1000002-instructions
# N = 333333: 3N + 3 = 1,000,002 instructions
-- asm
mov r0, 0
mov r1, 333333
loop:
add r0, 1
sub r1, 1
jne r1, 0, loop
exit
-- error

== loop-1500003-instructions
-- asm
mov r0, 0
mov r1, 500000
loop:
add r0, 1
sub r1, 1
jne r1, 0, loop
exit
-- error

== infinite-ja-self
-- asm
mov r0, 0
ja -1
exit
-- error

== infinite-ja32-self
-- asm
mov r0, 0
ja32 -1
exit
-- error

== infinite-loop-with-work
-- asm
mov r0, 0
loop:
add r0, 1
ja loop
-- error

== infinite-conditional-loop
-- asm
mov r0, 0
loop:
jeq r0, 0, loop
exit
-- error

== infinite-loop-with-helper-calls
-- asm
loop:
call 2
ja loop
-- error

== infinite-loop-with-local-calls
-- asm
loop:
call local f
ja loop
f:
mov r0, 0
exit
-- error

== budget-counts-callee-instructions
# 100,000 calls x (call + 9 callee instructions) + loop overhead > 1,000,000
-- asm
mov r6, 100000
loop:
call local f
sub r6, 1
jne r6, 0, loop
mov r0, 0
exit
f:
.rep 8
mov r0, 0
.endr
exit
-- error

== budget-fresh-per-run
# 600,000 instructions; passes on its own (the budget is not shared)
-- asm
mov r0, 0
mov r1, 199999
loop:
add r0, 1
sub r1, 1
jne r1, 0, loop
exit
-- result 199999
