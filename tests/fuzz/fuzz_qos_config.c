/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for lib/qos's parsers: --throttle KEY=VALUE text and the
 * --throttle-file JSON.  Whatever they accept must pass the validator, and
 * a parsed --throttle must format back to text that parses to the same.
 */
#include <rosen/qos.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], fmt[1024];
	char *s = malloc(size + 1);
	struct rb_qos_limits a, b;
	struct rb_qos_config cfg;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (rb_qos_limits_parse(s, &a, err, sizeof(err)) == 0) {
		if (rb_qos_limits_check(&a, err, sizeof(err)))
			abort();
		if (rb_qos_limits_format(&a, fmt, sizeof(fmt)) == 0 && fmt[0]) {
			if (rb_qos_limits_parse(fmt, &b, err, sizeof(err)) ||
			    !rb_qos_limits_equal(&a, &b) || strcmp(a.group, b.group))
				abort();
		}
	}
	if (rb_qos_config_parse_json(s, &cfg, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < cfg.n; i++)
			if (rb_qos_limits_check(&cfg.t[i].limits, err, sizeof(err)) ||
			    !cfg.t[i].limits.group[0])
				abort();
		rb_qos_config_free(&cfg);
	}
	free(s);
	return 0;
}
