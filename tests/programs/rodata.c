/* SPDX-License-Identifier: MIT */
/*
 * Constant data: two static const tables (the second sits at a non-zero
 * offset in its section, so the lddw carries an addend) and a string,
 * indexed with run-time values.  r2 = the index.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

static const u64 primes[8] = { 2, 3, 5, 7, 11, 13, 17, 19 };
static const u64 squares[8] = { 0, 1, 4, 9, 16, 25, 36, 49 };
static const char motto[] = "RosenBridge eBPF";

SEC("rodata_table") u64 rodata_table_prog(void *mem, u64 len)
{
	(void)mem;
	return primes[len & 7] * 1000 + squares[(len >> 3) & 7];
}

SEC("rodata_string") u64 rodata_string_prog(void *mem, u64 len)
{
	(void)mem;
	return (u64)motto[len % (sizeof(motto) - 1)];
}
