/* SPDX-License-Identifier: MIT */
/*
 * Read-write globals: a counter in .bss and one in .data.  Each run of the
 * same loaded program sees what the previous run left.  r2 = increment.
 * The counters are the second variable of their section, so the relocations
 * against them need the symbol's offset (st_value 8), not just the section.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

u64 bss_first;
u64 bss_count;
u64 data_first = 7;
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

/* Updates and reads every global; distinct fields in the result show that
 * each variable has its own slot. */
SEC("all_globals") u64 all_globals_prog(void *mem, u64 len)
{
	(void)mem;
	(void)len;
	bss_first += 1;
	bss_count += 2;
	return (bss_first * 100 + bss_count) << 32 |
	       (data_first * 10000 + data_count);
}
