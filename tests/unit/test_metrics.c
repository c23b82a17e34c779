/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged's metrics text and HTTP endpoint, their pure parts: label
 * escaping, number formatting, the families' HELP/TYPE lines, the address
 * and request-line parsers.  The .c files are included to reach their
 * static functions; the devices are stand-ins (device.c needs a vhost
 * server), the disk is a real one.
 */
#include "../../app/rosenbridged/metrics.c"
#include "../../app/rosenbridged/metrics_http.c"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"

/* ---- stand-ins for device.c ---------------------------------------------- */

struct rb_device {
	char name[64];
	struct rb_disk *disk;
	uint64_t connects;
	bool connected;
};

const char *rb_device_name(const struct rb_device *d)
{
	return d->name;
}

struct rb_disk *rb_device_disk(struct rb_device *d)
{
	return d->disk;
}

uint64_t rb_device_connects(const struct rb_device *d)
{
	return d->connects;
}

bool rb_device_connected(const struct rb_device *d)
{
	return d->connected;
}

static char err[512];

static char *temp_image(void)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/rosen-metrics-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return NULL;
	close(fd);
	return path;
}

/* Renders one stand-in device named `name` on a fresh disk. */
static char *render_one(const char *name, uint64_t connects, size_t *len)
{
	struct rb_workers *w = NULL;
	struct rb_disk *disk = NULL;
	char *img = temp_image(), *text = NULL;

	if (!img || rb_workers_new(1, RB_IO_EVENT, &w, err, sizeof(err)))
		return NULL;
	struct rb_disk_opts o = {.path = img, .name = "t", .queues = 2, .cache = RB_DISK_CACHE_BUFFERED};
	if (rb_disk_open(&o, w, &disk, err, sizeof(err)) == 0) {
		struct rb_device dev = {.disk = disk, .connects = connects, .connected = true};
		snprintf(dev.name, sizeof(dev.name), "%s", name);
		struct rb_device *devs[1] = {&dev};
		if (rb_metrics_render(devs, 1, w, &text, len))
			text = NULL;
		rb_disk_free(disk);
	}
	unlink(img);
	rb_workers_free(w);
	return text;
}

TEST(label_values_are_escaped)
{
	size_t len;
	char *t = render_one("a\"b\\c\nd", 3, &len);

	REQUIRE(t);
	CHECK(strstr(t, "rosen_frontend_connects_total{disk=\"a\\\"b\\\\c\\nd\"} 3\n") != NULL);
	/* The raw newline never reaches the text: every line is a comment or
	 * starts with a metric name. */
	for (char *line = t; *line; line = strchr(line, '\n') + 1) {
		CHECK(line[0] == '#' || strncmp(line, "rosen_", 6) == 0);
		if (!strchr(line, '\n'))
			break;
	}
	free(t);
}

TEST(every_family_has_help_and_type_and_the_text_ends_with_a_newline)
{
	static const char *const families[][2] = {
		{"rosen_requests_total", "counter"},
		{"rosen_request_duration_seconds", "histogram"},
		{"rosen_bytes_total", "counter"},
		{"rosen_ndp_hops_total", "counter"},
		{"rosen_program_instructions_total", "counter"},
		{"rosen_program_run_seconds_total", "counter"},
		{"rosen_verifier_rejections_total", "counter"},
		{"rosen_throttled_seconds_total", "counter"},
		{"rosen_inflight_requests", "gauge"},
		{"rosen_frontend_connects_total", "counter"},
		{"rosen_worker_busy_seconds_total", "counter"},
	};
	size_t len;
	char *t = render_one("vm0", 0, &len);
	char line[160];

	REQUIRE(t);
	CHECK_EQ_U64(strlen(t), len);
	CHECK(len > 0 && t[len - 1] == '\n');
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "\n# TYPE %s %s\n", families[i][0], families[i][1]);
		CHECK(strstr(t, line) != NULL);
		snprintf(line, sizeof(line), "# HELP %s ", families[i][0]);
		CHECK(strstr(t, line) != NULL);
	}
	CHECK(strstr(t, "rosen_requests_total{disk=\"vm0\",type=\"read\",status=\"ok\"} 0\n") != NULL);
	CHECK(strstr(t, "rosen_worker_busy_seconds_total{worker=\"0\"} ") != NULL);
	free(t);
}

TEST(numbers_are_written_exactly)
{
	struct text t = {0};
	char b[32];

	seconds(&t, 1500000001);
	REQUIRE(t.p);
	CHECK(strcmp(t.p, "1.500000001") == 0);
	free(t.p);
	bound(b, sizeof(b), 10000);
	CHECK(strcmp(b, "0.00001") == 0);
	bound(b, sizeof(b), 2500000000ull);
	CHECK(strcmp(b, "2.5") == 0);
	bound(b, sizeof(b), 10000000000ull);
	CHECK(strcmp(b, "10") == 0);
	bound(b, sizeof(b), 250000);
	CHECK(strcmp(b, "0.00025") == 0);
}

static int addr(const char *spec, bool *loopback, unsigned *port, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = rb_metrics_http_parse_addr(spec, &ss, &len, loopback, err, sizeof(err));

	*family = ss.ss_family;
	*port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
					: ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return rc;
}

TEST(listen_address_is_loopback_unless_another_is_named)
{
	bool lo;
	unsigned port;
	int fam;

	CHECK(addr("9177", &lo, &port, &fam) == 0 && lo && port == 9177 && fam == AF_INET);
	CHECK(addr("127.0.0.2:80", &lo, &port, &fam) == 0 && lo && port == 80);
	CHECK(addr("0.0.0.0:9177", &lo, &port, &fam) == 0 && !lo);
	CHECK(addr("192.0.2.1:1", &lo, &port, &fam) == 0 && !lo);
	CHECK(addr("[::1]:9177", &lo, &port, &fam) == 0 && lo && fam == AF_INET6);
	CHECK(addr("[::]:9177", &lo, &port, &fam) == 0 && !lo);
	CHECK(addr("[::ffff:127.0.0.1]:5", &lo, &port, &fam) == 0 && lo);
	CHECK(addr("0", &lo, &port, &fam) == 0 && port == 0);
	CHECK(addr("localhost:9177", &lo, &port, &fam) == -EINVAL);
	CHECK(strstr(err, "not a numeric") != NULL);
	CHECK(addr("70000", &lo, &port, &fam) == -EINVAL);
	CHECK(addr("1.2.3.4:", &lo, &port, &fam) == -EINVAL);
	CHECK(addr("1.2.3.4:-1", &lo, &port, &fam) == -EINVAL);
	CHECK(addr("", &lo, &port, &fam) == -EINVAL);
	CHECK(addr("::1:80", &lo, &port, &fam) == -EINVAL);
	CHECK(addr("[::1]80", &lo, &port, &fam) == -EINVAL);
}

static int req(const char *line, bool *head)
{
	return parse_request_line(line, strlen(line), head);
}

TEST(request_line_is_checked)
{
	bool head;

	CHECK(req("GET /metrics HTTP/1.1", &head) == 200 && !head);
	CHECK(req("GET /metrics HTTP/1.0", &head) == 200);
	CHECK(req("HEAD /metrics HTTP/1.1", &head) == 200 && head);
	CHECK(req("GET /metrics?name[]=x HTTP/1.1", &head) == 200);
	CHECK(req("GET / HTTP/1.1", &head) == 404);
	CHECK(req("GET /metricsx HTTP/1.1", &head) == 404);
	CHECK(req("GET /metric HTTP/1.1", &head) == 404);
	CHECK(req("POST /metrics HTTP/1.1", &head) == 405);
	CHECK(req("get /metrics HTTP/1.1", &head) == 405);
	CHECK(req("GET /metrics", &head) == 400);
	CHECK(req("GET /metrics HTTP/2.0", &head) == 400);
	CHECK(req("GET /metrics HTTP/1.1 x", &head) == 400);
	CHECK(req("GET  /metrics HTTP/1.1", &head) == 400);
	CHECK(req("GET metrics HTTP/1.1", &head) == 400);
	CHECK(req(" GET /metrics HTTP/1.1", &head) == 400);
	CHECK(req("", &head) == 400);
}

TEST_MAIN()
