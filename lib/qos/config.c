/* SPDX-License-Identifier: MIT */
/*
 * --throttle-file: the JSON file that names each disk's and group's limits
 * (docs/throttling.md).  Parse, then validate the whole, then hand back a
 * resolved list; nothing is ever applied from here, so a bad file changes
 * nothing anywhere.
 */
#include "qos_internal.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (4u << 20) /* a file of limits is small; refuse a runaway one */

/* One limits object, "group" allowed or not; err gets "where: why" (or
 * "where.key: why" with key_paths when one key is at fault). */
int rb_qos_limits_from_json(struct json_object *o, const char *where, bool group_ok,
			    bool key_paths, struct rb_qos_limits *out, char *err, size_t errlen)
{
	char why[384];
	uint32_t seen = 0;

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "%s: must be an object of limits, e.g. {\"iops-total\": 2000}",
			 where);
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		int rc;

		why[0] = 0;
		if (!strcmp(key, "group")) {
			if (!group_ok) {
				snprintf(why, sizeof(why), "a group does not name a group");
				rc = -EINVAL;
			} else if (!json_object_is_type(val, json_type_string)) {
				snprintf(why, sizeof(why), "group must be a string");
				rc = -EINVAL;
			} else {
				rc = rb_qos_limits_set_key(out, key, false, 0, json_object_get_string(val),
							   &seen, why, sizeof(why));
			}
		} else if (json_object_is_type(val, json_type_int)) {
			rc = rb_qos_limits_set_key(out, key, true, json_object_get_int64(val), NULL,
						   &seen, why, sizeof(why));
		} else {
			rc = rb_qos_limits_set_key(out, key, false, 0, NULL, &seen, why,
						   sizeof(why));
			if (!rc || strstr(why, "must be a number"))
				snprintf(why, sizeof(why), "%s must be an integer (plain number, "
					 "not a string or a fraction)", key);
			rc = -EINVAL;
		}
		if (rc) {
			if (key_paths)
				snprintf(err, errlen, "%s.%s: %s", where, key, why);
			else
				snprintf(err, errlen, "%s: %s", where, why);
			memset(out, 0, sizeof(*out));
			return rc;
		}
	}
	if (rb_qos_limits_check(out, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", where, why);
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

static struct rb_qos_target *find(struct rb_qos_target *t, size_t n, enum rb_qos_target_kind k,
				  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].kind == k && !strcmp(t[i].name, name))
			return &t[i];
	return NULL;
}

static int check_name(const char *name, const char *where, char *err, size_t errlen)
{
	if (rb_qos_name_ok(name))
		return 0;
	snprintf(err, errlen, "%s '%s': a name is a letter, then letters, digits, '-', '.' or "
		 "'_', at most %d characters", where, name, RB_QOS_NAME_MAX - 1);
	return -EINVAL;
}

/*
 * The whole file's rules, once every entry parsed: a disk joins a group of
 * "groups" (its own limits, if any, must be the group's), or a group that
 * other disks define inline (all must agree), or its own group named after
 * it; a name is either a group of "groups" or a disk's own group, not both.
 */
static int resolve(struct rb_qos_target *t, size_t ngroups, size_t n, char *err, size_t errlen)
{
	char a[256], b[256];

	for (size_t i = ngroups; i < n; i++) {
		struct rb_qos_target *d = &t[i];
		char gname[RB_QOS_NAME_MAX];
		struct rb_qos_target *g;
		const struct rb_qos_limits *def = NULL;
		const char *by = NULL;

		/* A copy: d->limits.group is rewritten below. */
		snprintf(gname, sizeof(gname), "%s", d->limits.group[0] ? d->limits.group : d->name);
		g = find(t, ngroups, RB_QOS_TARGET_GROUP, gname);

		if (g) {
			def = &g->limits;
			by = "groups";
			if (!d->limits.group[0] && rb_qos_limits_any(&d->limits)) {
				snprintf(err, errlen, "disks.%s: its own group would be named '%s', "
					 "which is already a group of \"groups\" (rename one, or "
					 "write \"group\": \"%s\")", d->name, gname, gname);
				return -EINVAL;
			}
		} else {
			/* The first disk in the file that defines the group inline. */
			for (size_t j = ngroups; j < n; j++) {
				const char *gj = t[j].limits.group[0] ? t[j].limits.group : t[j].name;
				if (!strcmp(gj, gname) && rb_qos_limits_any(&t[j].limits)) {
					def = &t[j].limits;
					by = t[j].name;
					break;
				}
			}
		}
		if (!def) {
			if (d->limits.group[0])
				snprintf(err, errlen, "disks.%s: group '%s' has no limits anywhere in "
					 "the file (define it under \"groups\")", d->name, gname);
			else
				snprintf(err, errlen, "disks.%s: no limits given", d->name);
			return -EINVAL;
		}
		if (rb_qos_limits_any(&d->limits) && !rb_qos_limits_equal(def, &d->limits)) {
			struct rb_qos_limits ra = *def, rb = d->limits;
			ra.group[0] = rb.group[0] = 0; /* the rates, for the message */
			rb_qos_limits_format(&ra, a, sizeof(a));
			rb_qos_limits_format(&rb, b, sizeof(b));
			if (g)
				snprintf(err, errlen, "disks.%s: limits '%s' differ from those of "
					 "groups.%s '%s' (give none to join the group)",
					 d->name, b, gname, a);
			else
				snprintf(err, errlen, "disks.%s: limits '%s' differ from '%s' that "
					 "disks.%s gives group '%s' (a group has one set of limits)",
					 d->name, b, a, by, gname);
			return -EINVAL;
		}
		d->limits = *def;
		snprintf(d->limits.group, sizeof(d->limits.group), "%s", gname);
	}
	return 0;
}

static int parse_section(struct json_object *sec, const char *sname, enum rb_qos_target_kind k,
			 struct rb_qos_target *t, size_t *n, char *err, size_t errlen)
{
	if (!sec)
		return 0;
	if (!json_object_is_type(sec, json_type_object)) {
		snprintf(err, errlen, "\"%s\" must be an object: {\"NAME\": {limits}, ...}", sname);
		return -EINVAL;
	}
	json_object_object_foreach(sec, name, val) {
		char where[RB_QOS_NAME_MAX + 16];
		struct rb_qos_target *e = &t[(*n)++];
		int rc = check_name(name, k == RB_QOS_TARGET_GROUP ? "groups: group" : "disks: disk",
				    err, errlen);

		if (rc)
			return rc;
		snprintf(where, sizeof(where), "%s.%s", sname, name);
		e->kind = k;
		snprintf(e->name, sizeof(e->name), "%s", name);
		rc = rb_qos_limits_from_json(val, where, k == RB_QOS_TARGET_DISK, false, &e->limits, err, errlen);
		if (rc)
			return rc;
		if (k == RB_QOS_TARGET_GROUP) {
			if (!rb_qos_limits_any(&e->limits)) {
				snprintf(err, errlen, "%s: no limits given", where);
				return -EINVAL;
			}
			snprintf(e->limits.group, sizeof(e->limits.group), "%s", name);
		}
	}
	return 0;
}

static void where_in_text(const char *text, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

int rb_qos_config_parse_json(const char *text, struct rb_qos_config *out, char *err,
			     size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *root, *groups = NULL, *disks = NULL;
	struct rb_qos_target *t = NULL;
	size_t len = strlen(text), n = 0, ngroups, cap;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (len > FILE_MAX) {
		snprintf(err, errlen, "larger than %u bytes", FILE_MAX);
		return -EFBIG;
	}
	tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* The NUL too: it ends a number at the end of the text. */
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	if (!root) {
		enum json_tokener_error je = json_tokener_get_error(tok);
		unsigned line, col;
		where_in_text(text, json_tokener_get_parse_end(tok), &line, &col);
		snprintf(err, errlen, "line %u, column %u: not valid JSON (%s)", line, col,
			 json_tokener_error_desc(je));
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);

	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "the file must hold one object: {\"groups\": {...}, "
			 "\"disks\": {...}}");
		goto out;
	}
	json_object_object_foreach(root, key, val) {
		if (!strcmp(key, "groups")) {
			groups = val;
		} else if (!strcmp(key, "disks")) {
			disks = val;
		} else {
			snprintf(err, errlen, "unknown key '%s' at the top (known: \"groups\", "
				 "\"disks\")", key);
			goto out;
		}
	}
	cap = (groups && json_object_is_type(groups, json_type_object)
		       ? (size_t)json_object_object_length(groups) : 0) +
	      (disks && json_object_is_type(disks, json_type_object)
		       ? (size_t)json_object_object_length(disks) : 0);
	t = calloc(cap ? cap : 1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (parse_section(groups, "groups", RB_QOS_TARGET_GROUP, t, &n, err, errlen))
		goto out;
	ngroups = n;
	if (parse_section(disks, "disks", RB_QOS_TARGET_DISK, t, &n, err, errlen))
		goto out;
	if (resolve(t, ngroups, n, err, errlen))
		goto out;
	out->t = t;
	out->n = n;
	t = NULL;
	rc = 0;
out:
	free(t);
	json_object_put(root);
	return rc;
}

int rb_qos_config_parse_file(const char *path, struct rb_qos_config *out, char *err,
			     size_t errlen)
{
	char why[512];
	FILE *f;
	char *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	text = malloc(FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	len = fread(text, 1, FILE_MAX + 1, f);
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!rc && len > FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %u bytes", path, FILE_MAX);
		rc = -EFBIG;
	} else if (rc) {
		snprintf(err, errlen, "%s: read error", path);
	} else if (memchr(text, 0, len)) {
		snprintf(err, errlen, "%s: holds a NUL byte: not a JSON text", path);
		rc = -EINVAL;
	}
	if (!rc) {
		text[len] = 0;
		rc = rb_qos_config_parse_json(text, out, why, sizeof(why));
		if (rc)
			snprintf(err, errlen, "%s: %s", path, why);
	}
	free(text);
	return rc;
}

void rb_qos_config_free(struct rb_qos_config *cfg)
{
	free(cfg->t);
	cfg->t = NULL;
	cfg->n = 0;
}

const struct rb_qos_target *rb_qos_config_disk(const struct rb_qos_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (cfg->t[i].kind == RB_QOS_TARGET_DISK && !strcmp(cfg->t[i].name, name))
			return &cfg->t[i];
	return NULL;
}
