/* janus-plugin/usage.c, the server's byte count per device: buckets at UTC
 * boundaries, the billing period from the device's reset day, time going
 * back, the file's round trip (atomic write, read, parse) and bad files
 * refused whole, and the TCP_INFO sampler on a real loopback connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../janus-plugin/usage.h"

#define T0 1709251200 /* 2024-03-01T00:00:00Z (a leap year: February had 29 days) */
#define H 3600
#define D 86400

static void test_buckets(void **state) {
  (void)state;
  op_usage_t u;
  op_usage_init(&u);
  op_usage_add(&u, OP_USAGE_UP, 100, T0 + 10);
  op_usage_add(&u, OP_USAGE_DOWN, 7, T0 + H - 1);
  op_usage_add(&u, OP_USAGE_UP, 50, T0 + H); /* the next hour */
  uint64_t b[2];
  op_usage_hour(&u, T0, b);
  assert_int_equal(b[0], 100);
  assert_int_equal(b[1], 7);
  op_usage_hour(&u, T0 + H, b);
  assert_int_equal(b[0], 50);
  assert_int_equal(b[1], 0);
  /* The clock set back: counted in the latest hour, never an older one. */
  op_usage_add(&u, OP_USAGE_UP, 1, T0 - D);
  op_usage_hour(&u, T0 + H, b);
  assert_int_equal(b[0], 51);
  assert_int_equal(u.last, T0 + H);
  /* A clock not set: the totals only. */
  op_usage_add(&u, OP_USAGE_DOWN, 1000, 10);
  assert_int_equal(u.total[1], 1007);
  uint64_t p[2];
  assert_int_equal(op_usage_period(&u, T0 + 2 * H, p), T0); /* day 1: March's period */
  assert_int_equal(p[0], 151);
  assert_int_equal(p[1], 7);
  /* 48 hours later the first hour's slot holds another hour. */
  op_usage_add(&u, OP_USAGE_UP, 2, T0 + 48 * H + 5);
  op_usage_hour(&u, T0, b);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 0);
}

static void test_period_reset_day(void **state) {
  (void)state;
  op_usage_t u;
  op_usage_init(&u);
  op_usage_set_reset_day(&u, 15);
  op_usage_set_reset_day(&u, 29); /* ignored: 1..28 */
  assert_int_equal(u.reset_day, 15);
  op_usage_add(&u, OP_USAGE_UP, 10, T0 - D);          /* Feb 29: the period from Feb 15 */
  op_usage_add(&u, OP_USAGE_UP, 20, T0 + 14 * D - 1); /* Mar 14 23:59:59: still it */
  uint64_t p[2];
  assert_int_equal(op_usage_period(&u, T0 + 14 * D - 1, p), T0 - 15 * D);
  assert_int_equal(p[0], 30);
  op_usage_add(&u, OP_USAGE_DOWN, 5, T0 + 14 * D); /* Mar 15 00:00: a new period */
  assert_int_equal(op_usage_period(&u, T0 + 14 * D, p), T0 + 14 * D);
  assert_int_equal(p[0], 0);
  assert_int_equal(p[1], 5);
  /* The months: two periods, each with its own bytes. */
  json_t *j = op_usage_json(&u, T0 + 14 * D);
  json_t *months = json_object_get(j, "months");
  assert_int_equal(json_array_size(months), 2);
  assert_string_equal(json_string_value(json_array_get(json_array_get(months, 0), 0)),
                      "2024-02-15T00:00:00Z");
  assert_int_equal(json_integer_value(json_array_get(json_array_get(months, 0), 1)), 30);
  assert_int_equal(json_integer_value(json_array_get(json_array_get(months, 1), 2)), 5);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "period"), "total")), 5);
  json_decref(j);
}

typedef struct {
  int n;
  char ids[4][16];
  op_usage_t u[4];
} s_got_t;

static void s_each(const char *id, const op_usage_t *u, void *arg) {
  s_got_t *g = arg;
  assert_true(g->n < 4);
  g_strlcpy(g->ids[g->n], id, sizeof g->ids[0]);
  g->u[g->n++] = *u;
}

static char *s_file(const char *id1, const op_usage_t *a, const char *id2, const op_usage_t *b) {
  json_t *devices = json_pack("{s:o, s:o}", id1, op_usage_to_json(a), id2, op_usage_to_json(b));
  json_t *root = json_pack("{s:i, s:o}", "version", OP_USAGE_VERSION, "devices", devices);
  char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(root);
  return text;
}

static void test_file_round_trip(void **state) {
  (void)state;
  op_usage_t a, b;
  op_usage_init(&a);
  op_usage_init(&b);
  op_usage_set_reset_day(&b, 20);
  for (int i = 0; i < 24 * 70; i++) /* 70 days, every hour: every ring wraps */
    op_usage_add(&a, i % 2, 1000 + (uint64_t)i, T0 + (int64_t)i * H);
  op_usage_add(&b, OP_USAGE_DOWN, 42, T0);
  b.hour_reported = T0 + 5 * H; /* later than its last count: allowed */
  char *text = s_file("cam1", &a, "cam2", &b);
  char dir[] = "/tmp/test-server-usage-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *path = g_strdup_printf("%s/usage.json", dir);
  assert_int_equal(op_usage_file_write(path, text, strlen(text)), 0);
  char *buf, why[256] = "";
  size_t len;
  assert_int_equal(op_usage_file_read(path, &buf, &len, why, sizeof why), 0);
  assert_string_equal(buf, text);
  s_got_t got = {0};
  assert_int_equal(op_usage_parse(buf, len, s_each, &got, why, sizeof why), 0);
  assert_int_equal(got.n, 2);
  assert_string_equal(got.ids[0], "cam1");
  for (int k = 0; k < 2; k++) {
    const op_usage_t *want = k ? &b : &a;
    assert_int_equal(got.u[k].total[0], want->total[0]);
    assert_int_equal(got.u[k].total[1], want->total[1]);
    assert_int_equal(got.u[k].reset_day, want->reset_day);
    uint64_t p1[2], p2[2];
    assert_int_equal(op_usage_period(&got.u[k], T0 + 70 * D, p1),
                     op_usage_period(want, T0 + 70 * D, p2));
    assert_memory_equal(p1, p2, sizeof p1);
  }
  char *again = s_file(got.ids[0], &got.u[0], got.ids[1], &got.u[1]);
  assert_string_equal(again, text); /* written back to the same bytes */
  g_free(buf);
  assert_int_equal(op_usage_file_read("/nonexistent/usage.json", &buf, &len, why, sizeof why), 1);
  g_free(buf);
  free(again);
  free(text);
  unlink(path);
  rmdir(dir);
  g_free(path);
}

static void test_bad_files(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "[]",
      "{\"version\": 2, \"devices\": {}}",
      "{\"version\": 1, \"devices\": {}, \"x\": 1}",
      "{\"version\": 1, \"devices\": {\"cam1\": {}}}",
      /* a bucket above the total */
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":1,\"last\":1709251200,\"hour_reported\":0,"
      "\"total\":[5,0],\"hours\":[[1709251200,6,0]],\"days\":[],\"months\":[]}}}",
      /* an hour not on the hour */
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":1,\"last\":1709251200,\"hour_reported\":0,"
      "\"total\":[5,0],\"hours\":[[1709251201,1,0]],\"days\":[],\"months\":[]}}}",
      /* a day outside the window */
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":1,\"last\":1709251200,\"hour_reported\":0,"
      "\"total\":[5,0],\"hours\":[],\"days\":[[1600000000,1,0]],\"months\":[]}}}",
      /* rows not ascending */
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":1,\"last\":1709251200,\"hour_reported\":0,"
      "\"total\":[5,0],\"hours\":[[1709251200,1,0],[1709247600,1,0]],\"days\":[],\"months\":[]}}}",
      /* a negative count, a reset day out of range */
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":1,\"last\":0,\"hour_reported\":0,"
      "\"total\":[-1,0],\"hours\":[],\"days\":[],\"months\":[]}}}",
      "{\"version\":1,\"devices\":{\"c\":{\"reset_day\":29,\"last\":0,\"hour_reported\":0,"
      "\"total\":[1,0],\"hours\":[],\"days\":[],\"months\":[]}}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char why[256] = "";
    s_got_t got = {0};
    assert_int_equal(op_usage_parse(bad[i], strlen(bad[i]), s_each, &got, why, sizeof why), -1);
    assert_true(why[0]);
    assert_int_equal(got.n, 0); /* nothing used from a bad file */
  }
  /* One good device and one bad one: the whole file is refused. */
  const char *half = "{\"version\":1,\"devices\":{\"a\":{\"reset_day\":1,\"last\":0,"
                     "\"hour_reported\":0,\"total\":[0,0],\"hours\":[],\"days\":[],\"months\":[]},"
                     "\"b\":{\"reset_day\":0,\"last\":0,\"hour_reported\":0,\"total\":[0,0],"
                     "\"hours\":[],\"days\":[],\"months\":[]}}}";
  char why[256] = "";
  s_got_t got = {0};
  assert_int_equal(op_usage_parse(half, strlen(half), s_each, &got, why, sizeof why), -1);
  assert_int_equal(got.n, 0);
}

static void test_tcp_sample(void **state) {
  (void)state;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(l, NULL, NULL);
  assert_true(s >= 0);
  char buf[1000] = {0};
  assert_int_equal(write(c, buf, sizeof buf), sizeof buf);
  assert_int_equal(read(s, buf, sizeof buf), sizeof buf);
  wire_tcp_t t;
  wire_tcp_reset(&t);
  uint64_t up, down;
  assert_int_equal(wire_tcp_sample(&t, s, &down, &up), 0);
  assert_true(up >= 1000 + 40); /* the payload and at least one header */
  assert_true(up < 1000 + 10 * 72);
  assert_int_equal(write(s, buf, 300), 300);
  assert_int_equal(read(c, buf, 300), 300);
  assert_int_equal(wire_tcp_sample(&t, s, &down, &up), 0);
  assert_true(down >= 300 + 40 && down < 300 + 5 * 72);
  assert_int_equal(wire_tcp_sample(&t, l, &down, &up), -1); /* no peer */
  assert_int_equal(wire_tcp_sample(&t, -1, &down, &up), -1);
  close(c);
  close(s);
  close(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buckets),         cmocka_unit_test(test_period_reset_day),
      cmocka_unit_test(test_file_round_trip), cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_tcp_sample),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
