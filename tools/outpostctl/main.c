/* outpostctl -c FILE status [--json] | send MODULE COMMAND [JSON] | usage [--json] [MODULE]
 * outpostctl keygen
 *
 * Talks to the running kernel over <runtime_dir>/control (REQ). Exit: 0 ok,
 * 1 the kernel did not answer or refused, 2 usage or configuration error.
 * keygen needs no kernel and no configuration: it prints a new CURVE key
 * pair for a device's uplink settings. usage prints the uplink's byte meter
 * (modules/uplink/meter.h; MODULE: the first module whose plugin is uplink):
 * the billing period, the last 24 hours, 31 days and 24 months, by class. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ANSWER_TIMEOUT_MS 4000 /* the kernel waits up to 2 s for a module */

static json_t *s_ask(const kconf_t *conf, json_t *req) {
  char ep[160];
  snprintf(ep, sizeof ep, "ipc://%s/control", conf->runtime_dir);
  void *ctx = zmq_ctx_new();
  void *s = zmq_socket(ctx, ZMQ_REQ);
  int timeout = ANSWER_TIMEOUT_MS, zero = 0;
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  char *text = json_dumps(req, JSON_COMPACT);
  json_t *reply = NULL;
  char buf[1 << 20];
  if (zmq_connect(s, ep) == 0 && zmq_send(s, text, strlen(text), 0) >= 0) {
    int n = zmq_recv(s, buf, sizeof buf, 0);
    if (n >= 0 && n < (int)sizeof buf)
      reply = json_loadb(buf, (size_t)n, 0, NULL);
  }
  if (!reply)
    fprintf(stderr, "outpostctl: no answer from the kernel at %s\n", ep);
  free(text);
  zmq_close(s);
  zmq_ctx_term(ctx);
  return reply;
}

static const char *s_str(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v && *v ? v : "-";
}

static void s_print_table(json_t *st) {
  printf("device %s (kernel pid %d)\n", s_str(st, "device"),
         (int)json_integer_value(json_object_get(st, "pid")));
  printf("%-12s %-18s %7s %-9s %8s %-24s %9s %9s %9s %7s\n", "NAME", "PLUGIN", "PID", "STATE",
         "RESTARTS", "LAST-EXIT", "UPTIME", "IN", "OUT", "DROPS");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(st, "modules"), i, m) {
    char plugin[64];
    snprintf(plugin, sizeof plugin, "%s%s", s_str(m, "plugin"),
             json_is_true(json_object_get(m, "fallback_active")) ? "*" : "");
    printf("%-12s %-18s %7d %-9s %8d %-24s %8.1fs %9lld %9lld %7lld\n", s_str(m, "name"), plugin,
           (int)json_integer_value(json_object_get(m, "pid")), s_str(m, "state"),
           (int)json_integer_value(json_object_get(m, "restarts")), s_str(m, "last_exit"),
           json_real_value(json_object_get(m, "uptime_s")),
           (long long)json_integer_value(json_object_get(m, "frames_in")),
           (long long)json_integer_value(json_object_get(m, "frames_out")),
           (long long)json_integer_value(json_object_get(m, "drops")));
    if (json_is_true(json_object_get(m, "fallback_active")))
      printf("%-12s   * fallback for %s\n", "", s_str(m, "configured_plugin"));
  }
}

/* Bytes in decimal units, as carriers bill them. */
static const char *s_bytes(char *buf, size_t len, json_t *v) {
  double n = (double)json_integer_value(v);
  if (n < 1e3)
    snprintf(buf, len, "%.0f B", n);
  else if (n < 1e6)
    snprintf(buf, len, "%.1f kB", n / 1e3);
  else if (n < 1e9)
    snprintf(buf, len, "%.2f MB", n / 1e6);
  else
    snprintf(buf, len, "%.2f GB", n / 1e9);
  return buf;
}

/* Rows of {label, up, down} under a title; label from key (an hour's Unix
 * seconds when key is "t"). */
static void s_print_rows(json_t *rows, const char *title, const char *key) {
  if (!json_array_size(rows))
    return;
  printf("\n%-24s %12s %12s\n", title, "UP", "DOWN");
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    char label[32] = "", up[24], down[24];
    json_t *k = json_object_get(row, key);
    time_t t = (time_t)json_integer_value(k);
    struct tm tm;
    if (json_is_string(k))
      snprintf(label, sizeof label, "%s", json_string_value(k));
    else if (gmtime_r(&t, &tm))
      strftime(label, sizeof label, "%Y-%m-%d %H:00", &tm);
    printf("  %-22s %12s %12s\n", label, s_bytes(up, sizeof up, json_object_get(row, "up")),
           s_bytes(down, sizeof down, json_object_get(row, "down")));
  }
}

/* The answer to `usage` (usage_json), for a person. */
static void s_print_usage(const char *module, json_t *u) {
  json_t *p = json_object_get(u, "period"), *t = json_object_get(u, "total");
  char a[24], b[24], c[24];
  printf("%s: bytes on the link as the device counts them (IP packets, headers included; "
         "traffic outside the uplink not seen)\n",
         module);
  printf("this period, since %.10s (reset day %lld): %s (%lld B): up %s, down %s\n",
         s_str(p, "start"), (long long)json_integer_value(json_object_get(p, "reset_day")),
         s_bytes(a, sizeof a, json_object_get(p, "bytes")),
         (long long)json_integer_value(json_object_get(p, "bytes")),
         s_bytes(b, sizeof b, json_object_get(p, "up")),
         s_bytes(c, sizeof c, json_object_get(p, "down")));
  const char *cls;
  json_t *one;
  json_object_foreach(json_object_get(u, "by_class"), cls, one) {
    printf("  %-10s period %12s   since the start: up %s, down %s\n", cls,
           s_bytes(a, sizeof a, json_object_get(one, "period")),
           s_bytes(b, sizeof b, json_object_get(one, "up")),
           s_bytes(c, sizeof c, json_object_get(one, "down")));
  }
  printf("since the start (%s): up %s (%lld B), down %s (%lld B)\n", s_str(t, "since"),
         s_bytes(a, sizeof a, json_object_get(t, "up")),
         (long long)json_integer_value(json_object_get(t, "up")),
         s_bytes(b, sizeof b, json_object_get(t, "down")),
         (long long)json_integer_value(json_object_get(t, "down")));
  s_print_rows(json_object_get(u, "hours"), "last 24 hours (UTC)", "t");
  s_print_rows(json_object_get(u, "days"), "last 31 days (UTC)", "date");
  s_print_rows(json_object_get(u, "months"), "last 24 months (UTC)", "month");
}

/* The first module of the configuration whose plugin is the uplink. */
static const char *s_uplink(const kconf_t *conf) {
  for (size_t i = 0; i < conf->n_modules; i++)
    if (!strcmp(conf->modules[i].plugin, "uplink"))
      return conf->modules[i].name;
  return NULL;
}

static int s_usage(void) {
  fprintf(stderr, "usage: outpostctl -c FILE status [--json]\n"
                  "       outpostctl -c FILE send MODULE COMMAND [JSON-ARGS]\n"
                  "       outpostctl -c FILE usage [--json] [MODULE]\n"
                  "       outpostctl keygen\n");
  return 2;
}

/* A new CURVE key pair, as libconfig lines to paste into the uplink's
 * settings; the public key also goes into the server's device list. */
static int s_keygen(void) {
  char public_key[41], secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key)) {
    fprintf(stderr, "outpostctl: cannot make a CURVE key pair: %s\n", zmq_strerror(errno));
    return 1;
  }
  printf("public_key = \"%s\";\nsecret_key = \"%s\";\n", public_key, secret_key);
  return 0;
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int o;
  while ((o = getopt(argc, argv, "+c:")) != -1)
    if (o == 'c')
      path = optarg;
    else
      return s_usage();
  if (optind < argc && !strcmp(argv[optind], "keygen"))
    return optind + 1 == argc ? s_keygen() : s_usage();
  if (!path || optind >= argc)
    return s_usage();
  char err[512];
  kconf_t *conf = kconf_load(path, err, sizeof err);
  if (!conf) {
    fprintf(stderr, "outpostctl: %s\n", err);
    return 2;
  }
  const char *verb = argv[optind];
  json_t *req = NULL;
  int as_json = 0;
  const char *meter = NULL; /* usage: the uplink module asked */
  if (!strcmp(verb, "usage") && optind + 3 >= argc) {
    int i = optind + 1;
    as_json = i < argc && !strcmp(argv[i], "--json");
    meter = i + as_json < argc ? argv[i + as_json] : s_uplink(conf);
    if (!meter || (i + as_json + 1 < argc)) {
      fprintf(stderr, "outpostctl: %s\n",
              meter ? "usage [--json] [MODULE]" : "no uplink module in the configuration");
      kconf_destroy(&conf);
      return 2;
    }
    req = json_pack("{s:s, s:s, s:s}", "request", "send", "module", meter, "command", "usage");
  } else if (!strcmp(verb, "status")) {
    as_json = optind + 1 < argc && !strcmp(argv[optind + 1], "--json");
    req = json_pack("{s:s}", "request", "status");
  } else if (!strcmp(verb, "send") && optind + 2 < argc) {
    json_t *args = NULL;
    if (optind + 3 < argc) {
      json_error_t je;
      args = json_loads(argv[optind + 3], 0, &je);
      if (!json_is_object(args)) {
        fprintf(stderr, "outpostctl: JSON-ARGS must be an object: %s\n", je.text);
        kconf_destroy(&conf);
        return 2;
      }
    }
    req = json_pack("{s:s, s:s, s:s, s:o?}", "request", "send", "module", argv[optind + 1],
                    "command", argv[optind + 2], "args", args);
  } else {
    kconf_destroy(&conf);
    return s_usage();
  }
  char module[64];
  snprintf(module, sizeof module, "%s", meter ? meter : "");
  json_t *reply = s_ask(conf, req);
  json_decref(req);
  kconf_destroy(&conf);
  if (!reply)
    return 1;
  int rc = json_object_get(reply, "error") || json_is_false(json_object_get(reply, "ok")) ? 1 : 0;
  if (rc) {
    const char *why = json_string_value(json_object_get(reply, "error"));
    if (!why)
      why = json_string_value(json_object_get(json_object_get(reply, "reply"), "error"));
    fprintf(stderr, "outpostctl: %s\n", why ? why : "the module refused the command");
  }
  if (!strcmp(verb, "status") && !as_json && !rc)
    s_print_table(reply);
  else if (module[0] && !rc && !as_json)
    s_print_usage(module, json_object_get(reply, "reply"));
  else if (module[0] && !rc) {
    char *text = json_dumps(json_object_get(reply, "reply"), JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
  } else {
    char *text = json_dumps(reply, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
  }
  json_decref(reply);
  return rc;
}
