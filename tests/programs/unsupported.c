/* SPDX-License-Identifier: MIT */
/*
 * Valid clang output the loader must refuse with a clear message: a BTF map,
 * an extern variable, a function pointer, a pointer stored in initialised
 * data.  One program section per feature.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

struct {
	int type;
	int max_entries;
} counts SEC(".maps");

extern u64 outside_value;

__attribute__((noinline)) u64 callee(u64 x)
{
	return x + 1;
}

static const char *const words[] = { "alpha", "beta" };

SEC("uses_map") u64 uses_map_prog(void *mem, u64 len)
{
	void *(*lookup)(void *, const void *) = (void *)1;
	int key = (int)len;

	(void)mem;
	return lookup(&counts, &key) != 0;
}

SEC("uses_extern") u64 uses_extern_prog(void *mem, u64 len)
{
	(void)mem;
	return outside_value + len;
}

SEC("func_pointer") u64 func_pointer_prog(void *mem, u64 len)
{
	u64 (*volatile fp)(u64) = callee;

	(void)mem;
	return (u64)fp + len;
}

SEC("pointer_in_data") u64 pointer_in_data_prog(void *mem, u64 len)
{
	(void)mem;
	return (u64)words[len & 1][0];
}
