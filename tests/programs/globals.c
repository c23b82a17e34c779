/* SPDX-License-Identifier: MIT */
/*
 * Read-write globals: a counter in .bss and one in .data.  Each run of the
 * same loaded program sees what the previous run left.  r2 = increment.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

u64 bss_count;
u64 data_count = 1000;

SEC("bss_counter") u64 bss_counter_prog(void *mem, u64 len)
{
	(void)mem;
	(void)len;
	return ++bss_count;
}

SEC("data_counter") u64 data_counter_prog(void *mem, u64 len)
{
	(void)mem;
	data_count += len;
	return data_count;
}
