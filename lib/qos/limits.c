/* SPDX-License-Identifier: MIT */
/*
 * Throttle limits as an operator writes them: QEMU's key names, the parsing
 * of "key=value,..." and QEMU's validation rules, each refusal naming the
 * key.  Pure functions: no state, nothing applied here.
 */
#include "qos_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const bucket_key[RB_QOS_NR_BUCKETS] = {
	"bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write",
};

enum { F_AVG, F_MAX, F_LEN };
#define KEY_IOPS_SIZE (RB_QOS_NR_BUCKETS * 3)
#define KEY_GROUP (KEY_IOPS_SIZE + 1)

/* QMP's names (block_set_io_throttle), which -drive does not take. */
static const struct {
	const char *qmp, *key;
} qmp_alias[] = {
	{"bps", "bps-total"},   {"bps_rd", "bps-read"},   {"bps_wr", "bps-write"},
	{"iops", "iops-total"}, {"iops_rd", "iops-read"}, {"iops_wr", "iops-write"},
	{"iops_size", "iops-size"}, {"bps_max", "bps-total-max"},
	{"iops_max", "iops-total-max"},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
bool rb_qos_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n >= RB_QOS_NAME_MAX || !isalpha((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return true;
}

/* Key index (bucket * 3 + field, or KEY_IOPS_SIZE, KEY_GROUP), or -1. */
static int key_index(const char *key, size_t n)
{
	for (int bk = 0; bk < RB_QOS_NR_BUCKETS; bk++) {
		size_t bl = strlen(bucket_key[bk]);
		if (n < bl || memcmp(key, bucket_key[bk], bl))
			continue;
		if (n == bl)
			return bk * 3 + F_AVG;
		if (n == bl + 4 && !memcmp(key + bl, "-max", 4))
			return bk * 3 + F_MAX;
		if (n == bl + 11 && !memcmp(key + bl, "-max-length", 11))
			return bk * 3 + F_LEN;
	}
	if (n == 9 && !memcmp(key, "iops-size", 9))
		return KEY_IOPS_SIZE;
	if (n == 5 && !memcmp(key, "group", 5))
		return KEY_GROUP;
	return -1;
}

static int unknown_key(const char *key, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(qmp_alias) / sizeof(qmp_alias[0]); i++)
		if (!strcmp(key, qmp_alias[i].qmp))
			return fail(err, errlen,
				    "unknown key '%s' (that is QMP's name; the option takes "
				    "QEMU's -drive name '%s')",
				    key, qmp_alias[i].key);
	if (!strncmp(key, "throttling.", 11))
		return fail(err, errlen, "unknown key '%s' (write it without 'throttling.')", key);
	return fail(err, errlen,
		    "unknown key '%s' (known: {bps,iops}-{total,read,write}[-max[-length]], "
		    "iops-size, group)",
		    key);
}

int rb_qos_limits_set_key(struct rb_qos_limits *lim, const char *key, bool has_num,
			  int64_t num, const char *str, uint32_t *seen, char *err, size_t errlen)
{
	int k = key_index(key, strlen(key));
	uint64_t v;

	if (k < 0)
		return unknown_key(key, err, errlen);
	if (*seen & (1u << k))
		return fail(err, errlen, "%s is given twice", key);
	*seen |= 1u << k;
	if (k == KEY_GROUP) {
		if (has_num || !str)
			return fail(err, errlen, "group must be a name, not a number");
		if (!rb_qos_name_ok(str))
			return fail(err, errlen,
				    "group='%s': a group name is a letter, then letters, digits, "
				    "'-', '.' or '_', at most %d characters",
				    str, RB_QOS_NAME_MAX - 1);
		snprintf(lim->group, sizeof(lim->group), "%s", str);
		return 0;
	}
	if (!has_num)
		return fail(err, errlen, "%s must be a number", key);
	if (num < 0)
		return fail(err, errlen, "%s=%" PRId64 ": must not be negative", key, num);
	v = (uint64_t)num;
	if (v > RB_QOS_VALUE_MAX)
		return fail(err, errlen, "%s=%" PRIu64 ": above the maximum %llu", key, v,
			    RB_QOS_VALUE_MAX);
	if (k == KEY_IOPS_SIZE) {
		lim->iops_size = v;
		return 0;
	}
	switch (k % 3) {
	case F_AVG:
		lim->b[k / 3].avg = v;
		break;
	case F_MAX:
		lim->b[k / 3].max = v;
		break;
	default:
		if (!v)
			return fail(err, errlen, "%s=0: the burst length cannot be 0 (seconds, "
				    "default 1)", key);
		lim->b[k / 3].max_length = v;
		break;
	}
	return 0;
}

/* A plain decimal number, as QEMU's throttling options take; -1 on error (message set). */
static int parse_num(const char *key, const char *s, int64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	uint64_t v = 0;
	bool big = false;

	if (!*s)
		return fail(err, errlen, "%s: no value (write %s=NUMBER)", key, key);
	if (*p == '-') {
		/* Never allowed: say so, however long the number. */
		p++;
		if (!*p || strspn(p, "0123456789") != strlen(p))
			return fail(err, errlen, "%s=%s: not a number", key, s);
		return fail(err, errlen, "%s=%s: must not be negative", key, s);
	}
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			big = true;
		else
			v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		static const char suffixes[] = "KMGTkmgt";
		const char *sfx = p == s ? NULL : strchr(suffixes, *p);
		if (sfx && *sfx && (!p[1] || ((p[1] == 'B' || p[1] == 'b') && !p[2]) ||
				    (p[1] == 'i' && p[2] == 'B' && !p[3])) && !big) {
			unsigned shift = 10u * (1u + (unsigned)((sfx - suffixes) % 4));
			if (v <= (RB_QOS_VALUE_MAX >> shift))
				return fail(err, errlen,
					    "%s=%s: not a plain number (QEMU's throttle options "
					    "take no K/M/G suffix: write %s=%" PRIu64 ")",
					    key, s, key, v << shift);
		}
		return fail(err, errlen, "%s=%s: not a plain number", key, s);
	}
	if (big || v > RB_QOS_VALUE_MAX)
		return fail(err, errlen, "%s=%s: above the maximum %llu", key, s,
			    RB_QOS_VALUE_MAX);
	*out = (int64_t)v;
	return 0;
}

int rb_qos_limits_parse(const char *kv, struct rb_qos_limits *out, char *err, size_t errlen)
{
	struct rb_qos_limits lim;
	uint32_t seen = 0;
	const char *p = kv;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&lim, 0, sizeof(lim));
	if (!kv || !*kv)
		return fail(err, errlen, "no limits given (e.g. iops-total=2000)");
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char item[160], *eq;

		if (n == 0)
			return fail(err, errlen, "empty item in '%s' (two commas, or one at an end)",
				    kv);
		if (n >= sizeof(item))
			return fail(err, errlen, "item '%.40s...' is too long", p);
		memcpy(item, p, n);
		item[n] = 0;
		eq = strchr(item, '=');
		if (!eq)
			return fail(err, errlen, "'%s': expected KEY=VALUE", item);
		*eq = 0;
		if (key_index(item, strlen(item)) == KEY_GROUP) {
			rc = rb_qos_limits_set_key(&lim, item, false, 0, eq + 1, &seen, err, errlen);
		} else if (key_index(item, strlen(item)) < 0) {
			rc = unknown_key(item, err, errlen);
		} else {
			int64_t v = 0;
			rc = parse_num(item, eq + 1, &v, err, errlen);
			if (!rc)
				rc = rb_qos_limits_set_key(&lim, item, true, v, NULL, &seen, err,
							   errlen);
		}
		if (rc)
			return rc;
		p += n;
		if (*p == ',' && !*++p)
			return fail(err, errlen, "empty item in '%s' (two commas, or one at an end)",
				    kv);
	}
	rc = rb_qos_limits_check(&lim, err, errlen);
	if (rc)
		return rc;
	*out = lim;
	return 0;
}

int rb_qos_limits_check(const struct rb_qos_limits *lim, char *err, size_t errlen)
{
	const struct rb_qos_bucket_limit *b = lim->b;

	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		if (b[i].avg > RB_QOS_VALUE_MAX || b[i].max > RB_QOS_VALUE_MAX ||
		    b[i].max_length > RB_QOS_VALUE_MAX)
			return fail(err, errlen, "%s: values must be within [0, %llu]",
				    bucket_key[i], RB_QOS_VALUE_MAX);
	}
	/* Total and read/write of one kind are exclusive, for rates and for bursts. */
	for (int t = RB_QOS_BPS_TOTAL; t <= RB_QOS_IOPS_TOTAL; t += 3) {
		for (int rw = t + 1; rw <= t + 2; rw++) {
			if (b[t].avg && b[rw].avg)
				return fail(err, errlen,
					    "%s and %s cannot be used together (a total limit "
					    "excludes read/write limits of the same kind)",
					    bucket_key[t], bucket_key[rw]);
			if (b[t].max && b[rw].max)
				return fail(err, errlen,
					    "%s-max and %s-max cannot be used together (a total "
					    "limit excludes read/write limits of the same kind)",
					    bucket_key[t], bucket_key[rw]);
		}
	}
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		const char *k = bucket_key[i];
		if (b[i].max && !b[i].avg)
			return fail(err, errlen, "%s-max=%" PRIu64 " requires %s (a burst rate "
				    "needs an average rate)", k, b[i].max, k);
		if (b[i].max && b[i].max < b[i].avg)
			return fail(err, errlen,
				    "%s-max=%" PRIu64 " is below %s=%" PRIu64
				    " (the burst rate cannot be lower than the average)",
				    k, b[i].max, k, b[i].avg);
		if (b[i].max_length > 1 && !b[i].max)
			return fail(err, errlen, "%s-max-length=%" PRIu64 " requires %s-max "
				    "(a burst length needs a burst rate)", k, b[i].max_length, k);
		if (b[i].max && b[i].max_length > RB_QOS_VALUE_MAX / b[i].max)
			return fail(err, errlen,
				    "%s-max-length=%" PRIu64 " is too long for %s-max=%" PRIu64
				    " (max x max-length must be at most %llu)",
				    k, b[i].max_length, k, b[i].max, RB_QOS_VALUE_MAX);
	}
	if (lim->iops_size > RB_QOS_VALUE_MAX)
		return fail(err, errlen, "iops-size: values must be within [0, %llu]",
			    RB_QOS_VALUE_MAX);
	if (lim->iops_size && !b[RB_QOS_IOPS_TOTAL].avg && !b[RB_QOS_IOPS_READ].avg &&
	    !b[RB_QOS_IOPS_WRITE].avg)
		return fail(err, errlen, "iops-size=%" PRIu64 " requires an iops limit "
			    "(iops-total, iops-read or iops-write)", lim->iops_size);
	if (memchr(lim->group, 0, sizeof(lim->group)) == NULL)
		return fail(err, errlen, "group: name not terminated");
	if (lim->group[0] && !rb_qos_name_ok(lim->group))
		return fail(err, errlen, "group='%s': not a valid group name", lim->group);
	return 0;
}

bool rb_qos_limits_any(const struct rb_qos_limits *lim)
{
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++)
		if (lim->b[i].avg)
			return true;
	return false;
}

bool rb_qos_limits_equal(const struct rb_qos_limits *a, const struct rb_qos_limits *b)
{
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		uint64_t la = a->b[i].max_length ? a->b[i].max_length : 1;
		uint64_t lb = b->b[i].max_length ? b->b[i].max_length : 1;
		if (a->b[i].avg != b->b[i].avg || a->b[i].max != b->b[i].max || la != lb)
			return false;
	}
	return a->iops_size == b->iops_size;
}

int rb_qos_limits_format(const struct rb_qos_limits *lim, char *buf, size_t len)
{
	size_t off = 0;
	int n;

#define PUT(...)                                                                  \
	do {                                                                      \
		n = snprintf(buf + off, off < len ? len - off : 0, __VA_ARGS__); \
		if (n < 0)                                                        \
			return -EINVAL;                                           \
		off += (size_t)n;                                                 \
	} while (0)
	if (len)
		buf[0] = 0;
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		const struct rb_qos_bucket_limit *b = &lim->b[i];
		if (b->avg)
			PUT("%s%s=%" PRIu64, off ? "," : "", bucket_key[i], b->avg);
		if (b->max)
			PUT("%s%s-max=%" PRIu64, off ? "," : "", bucket_key[i], b->max);
		if (b->max_length)
			PUT("%s%s-max-length=%" PRIu64, off ? "," : "", bucket_key[i],
			    b->max_length);
	}
	if (lim->iops_size)
		PUT("%siops-size=%" PRIu64, off ? "," : "", lim->iops_size);
	if (lim->group[0])
		PUT("%sgroup=%s", off ? "," : "", lim->group);
#undef PUT
	return off < len ? 0 : -ENOSPC;
}
