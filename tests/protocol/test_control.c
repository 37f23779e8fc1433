/* The control-message schema (protocol/control.c): what is accepted, what is
 * refused, and that nothing malformed crashes it. */
#include "control.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int s_ok(const char *text, ctl_type_t want) {
  ctl_type_t t;
  const char *why = NULL;
  json_t *m = ctl_parse(text, strlen(text), &t, &why);
  int ok = m && t == want;
  json_decref(m);
  return ok;
}

static int s_refused(const char *text) {
  ctl_type_t t;
  const char *why = NULL;
  json_t *m = ctl_parse(text, strlen(text), &t, &why);
  json_decref(m);
  return !m && why && *why;
}

static void test_valid_messages(void **state) {
  (void)state;
  assert_true(
      s_ok("{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"av1\"}", CTL_HELLO));
  assert_true(s_ok("{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"h265\","
                   "\"width\":640,\"height\":480,\"fps\":30,\"extra\":\"ignored\"}",
                   CTL_HELLO));
  assert_true(
      s_ok("{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"h264\"}", CTL_HELLO));
  assert_true(s_ok("{\"v\":1,\"type\":\"session\",\"ssrc\":4294967295,\"pt\":96,\"codec\":\"av1\","
                   "\"port\":7710,\"streaming\":true}",
                   CTL_SESSION));
  assert_true(s_ok("{\"v\":1,\"type\":\"command\",\"id\":3,\"command\":\"bitrate\","
                   "\"args\":{\"kbps\":250}}",
                   CTL_COMMAND));
  assert_true(s_ok("{\"v\":1,\"type\":\"ack\",\"id\":3,\"ok\":false,\"reply\":\"x\"}", CTL_ACK));
  assert_true(s_ok("{\"v\":1,\"type\":\"status\",\"uplink\":{}}", CTL_STATUS));
  /* the heartbeat: a status with nothing new */
  assert_true(s_ok("{\"v\":1,\"type\":\"status\",\"keepalive_s\":55}", CTL_STATUS));
  assert_true(s_ok("{\"v\":1,\"type\":\"command\",\"id\":4,\"command\":\"status\"}", CTL_COMMAND));
  assert_true(s_ok("{\"v\":1,\"type\":\"bye\"}", CTL_BYE));
  assert_true(s_ok("{\"v\":1,\"type\":\"error\",\"error\":\"no\"}", CTL_ERROR));
}

static void test_refused_messages(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "null",
      "[]",
      "{",
      "{\"type\":\"bye\"}",
      "{\"v\":2,\"type\":\"bye\"}",
      "{\"v\":\"1\",\"type\":\"bye\"}",
      "{\"v\":1}",
      "{\"v\":1,\"type\":\"nope\"}",
      "{\"v\":1,\"type\":\"hello\",\"codec\":\"av1\"}",
      "{\"v\":1,\"type\":\"hello\",\"device\":\"\",\"codec\":\"av1\"}",
      "{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"vp8\"}",
      "{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"av1\",\"fps\":0}",
      "{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"av1\",\"width\":\"640\"}",
      "{\"v\":1,\"type\":\"session\",\"ssrc\":0,\"pt\":96,\"codec\":\"av1\",\"port\":1,"
      "\"streaming\":true}",
      "{\"v\":1,\"type\":\"session\",\"ssrc\":1,\"pt\":200,\"codec\":\"av1\",\"port\":1,"
      "\"streaming\":true}",
      "{\"v\":1,\"type\":\"session\",\"ssrc\":1,\"pt\":96,\"codec\":\"av1\",\"port\":70000,"
      "\"streaming\":true}",
      "{\"v\":1,\"type\":\"command\",\"id\":1,\"command\":\"rm -rf\"}",
      "{\"v\":1,\"type\":\"command\",\"id\":1,\"command\":\"start\",\"args\":[]}",
      "{\"v\":1,\"type\":\"ack\",\"id\":1}",
      "{\"v\":1,\"type\":\"status\",\"keepalive_s\":0}",
      "{\"v\":1,\"type\":\"status\",\"keepalive_s\":3601}",
      "{\"v\":1,\"type\":\"status\",\"uplink\":[]}",
      "{\"v\":1,\"type\":\"hello\",\"device\":\"cam1\",\"codec\":\"av1\",\"keepalive_s\":-1}",
      "{\"v\":1,\"type\":\"ack\",\"id\":1,\"ok\":1}",
      "{\"v\":1,\"type\":\"bye\",\"v\":1}", /* duplicate keys are refused */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (!s_refused(bad[i]))
      fail_msg("accepted: %s", bad[i]);
}

static void test_random_bytes_never_crash(void **state) {
  (void)state;
  srand(7);
  char buf[512];
  for (int i = 0; i < 20000; i++) {
    size_t n = (size_t)(rand() % (int)sizeof buf);
    for (size_t j = 0; j < n; j++)
      buf[j] = (char)(rand() & 0xff);
    ctl_type_t t;
    const char *why;
    json_t *m = ctl_parse(buf, n, &t, &why);
    json_decref(m);
  }
  /* and a message over the size limit */
  size_t big = OUTPOST_CONTROL_MAX_BYTES + 1;
  char *huge = malloc(big);
  memset(huge, ' ', big);
  ctl_type_t t;
  const char *why = NULL;
  assert_null(ctl_parse(huge, big, &t, &why));
  assert_string_equal(why, "message too large");
  free(huge);
}

static void test_new_and_dump(void **state) {
  (void)state;
  json_t *m = ctl_new(CTL_COMMAND);
  json_object_set_new(m, "id", json_integer(9));
  json_object_set_new(m, "command", json_string("keyframe"));
  size_t len;
  char *text = ctl_dump(m, &len);
  assert_true(s_ok(text, CTL_COMMAND));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_messages),
      cmocka_unit_test(test_refused_messages),
      cmocka_unit_test(test_random_bytes_never_crash),
      cmocka_unit_test(test_new_and_dump),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
