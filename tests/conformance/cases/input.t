# The plugin protocol itself: the program is ONE stdin line of hex bytes
# separated by one or more spaces (a trailing separator may follow); the
# memory is the first argv string in the same form; r2 = its length; r0 is
# printed as lowercase hex without prefix or leading zeros.  Malformed input
# is a load failure (exit 1).  Sections use verbatim quoted strings.

== single-spaces
-- program "b7 00 00 00 05 00 00 00 95 00 00 00 00 00 00 00"
-- result 5

== multiple-spaces-between-bytes
-- program "b7  00 00   00 05 00 00 00    95 00 00 00 00 00 00 00"
-- result 5

== trailing-space
-- program "b7 00 00 00 05 00 00 00 95 00 00 00 00 00 00 00 "
-- result 5

== trailing-spaces
-- program "b7 00 00 00 05 00 00 00 95 00 00 00 00 00 00 00   "
-- result 5

== output-lowercase-hex-no-leading-zeros
-- asm
lddw r0, 0x0abcdef012345678
exit
-- result 0xabcdef012345678

== output-zero
-- asm
mov r0, 0
exit
-- result 0

== memory-multiple-spaces
-- memarg "01  02 03    04"
-- asm
ldxw r0, [r1]
exit
-- result 0x04030201

== memory-trailing-space-length
-- memarg "01 02 03 "
-- asm
mov r0, r2
exit
-- result 3

== memory-lowercase-hex
-- memarg "ab cd ef"
-- asm
ldxb r0, [r1+2]
exit
-- result 0xef

== program-length-not-multiple-of-8
-- program "b7 00 00 00 05 00 00 00 95 00 00 00"
-- error

== program-bad-hex
-- program "b7 00 00 00 05 00 00 zz 95 00 00 00 00 00 00 00"
-- error

== program-empty-line
-- program ""
-- error

== memory-bad-hex
-- memarg "01 0g 03"
-- asm
mov r0, 0
exit
-- error
