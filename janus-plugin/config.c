/* janus.plugin.outpost.jcfg, read with the discipline of the device's
 * config: every key is declared in a table below (type, range, default),
 * an unknown key or a bad value stops the plugin's init, and the error names
 * the file, the line, the category and the key. A misspelt `mode` must not
 * silently become on-demand, and an invalid key must not become an all-zero
 * CURVE secret.
 *
 * The file is read with libconfig, the same parser Janus's own jcfg reader
 * uses, because Janus's janus_config keeps no line numbers. As in Janus's
 * own configs, a number or a boolean may also be written as a string
 * ("7710", "true"). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <string.h>
#include <zmq.h>

#include <janus/debug.h>

op_config_t op_conf;

typedef enum { K_STRING, K_INT, K_BOOL, K_KEY, K_ENUM } key_kind_t;

/* One key of a category: where its value goes (an offset into the struct
 * being filled), its kind and what it may be. */
typedef struct {
  const char *name;
  key_kind_t kind;
  size_t offset;
  long long min, max;   /* K_INT: the range; K_STRING: the length */
  const char **choices; /* K_ENUM: the values, stored as their index */
} cfg_key_t;

#define GEN(f) offsetof(op_config_t, f)
#define DEV(f) offsetof(op_device_def_t, f)

static const char *s_modes[] = {"on-demand", "always", "manual", NULL};
static const char *s_latencies[] = {"auto", "low", "smooth", NULL}; /* op_latency_t's order */
/* In protocol/srtp_keys.h's order (media_srtp.c maps index i to profile i + 1),
 * then "none": media in clear, for a network trusted end to end (a benchmark
 * tee, a LAN behind a VPN), never the default. */
static const char *s_profiles[] = {"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "none",
                                   NULL};

static const cfg_key_t s_general[] = {
    {"control", K_STRING, GEN(control_endpoint), 7, 255, NULL},
    {"server_secret_key", K_KEY, GEN(secret_key), 40, 40, NULL},
    {"operator_secret", K_STRING, GEN(operator_secret), 1, 256, NULL},
    {"recordings", K_STRING, GEN(recordings), 1, 1024, NULL},
    {"ingest_ip", K_STRING, GEN(ingest_ip), 7, 15, NULL},
    {"ingest_port", K_INT, GEN(ingest_port), 1, 65535, NULL},
    {"ingest_public_port", K_INT, GEN(ingest_public_port), 1, 65535, NULL},
    {"keyframe_interval_ms", K_INT, GEN(keyframe_interval_ms), 100, 60000, NULL},
    {"on_demand_linger_ms", K_INT, GEN(linger_ms), 0, 600000, NULL},
    {"gop_cache_kb", K_INT, GEN(gop_cache_kb), 0, 262144, NULL},
    {"gop_cache_ms", K_INT, GEN(gop_cache_ms), 1000, 600000, NULL},
    {"control_max_pending", K_INT, GEN(control_max_pending), 1, 10000, NULL},
    {"srtp_profile", K_ENUM, GEN(srtp_profile), 0, 0, s_profiles},
    {"usage_file", K_STRING, GEN(usage_file), 2, 1024, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

static const cfg_key_t s_device[] = {{"public_key", K_KEY, DEV(public_key), 40, 40, NULL},
                                     {"description", K_STRING, DEV(description), 0, 256, NULL},
                                     {"mode", K_ENUM, DEV(mode), 0, 0, s_modes},
                                     {"latency", K_ENUM, DEV(latency), 0, 0, s_latencies},
                                     {"pin", K_STRING, DEV(pin), 1, 64, NULL},
                                     {"is_private", K_BOOL, DEV(is_private), 0, 1, NULL},
                                     {NULL, 0, 0, 0, 0, NULL}};

typedef struct {
  const char *file;
  char *error; /* the first error (owned), or NULL */
} s_ctx_t;

static void s_fail(s_ctx_t *c, const config_setting_t *at, const char *cat, const char *key,
                   const char *fmt, ...) {
  if (c->error)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  int line = at ? config_setting_source_line(at) : 0;
  c->error = key ? g_strdup_printf("%s:%d: %s.%s: %s", c->file, line, cat, key, why)
                 : g_strdup_printf("%s:%d: %s: %s", c->file, line, cat, why);
  g_free(why);
}

/* A Z85 CURVE key: 40 characters that decode (zmq_z85_decode checks the
 * alphabet and each group's range). */
static int s_valid_key(const char *text) {
  uint8_t raw[32];
  int ok = strlen(text) == 40 && zmq_z85_decode(raw, text) != NULL;
  explicit_bzero(raw, sizeof raw);
  return ok;
}

static int s_int(const config_setting_t *v, long long *out) {
  int t = config_setting_type(v);
  if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
    *out = config_setting_get_int64(v);
    return 0;
  }
  const char *s = t == CONFIG_TYPE_STRING ? config_setting_get_string(v) : NULL;
  if (!s || !*s)
    return -1;
  char *end;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return errno || *end ? -1 : 0;
}

static int s_bool(const config_setting_t *v, gboolean *out) {
  if (config_setting_type(v) == CONFIG_TYPE_BOOL) {
    *out = config_setting_get_bool(v) ? TRUE : FALSE;
    return 0;
  }
  const char *s = config_setting_type(v) == CONFIG_TYPE_STRING ? config_setting_get_string(v) : "";
  if (!g_ascii_strcasecmp(s, "true") || !g_ascii_strcasecmp(s, "yes"))
    *out = TRUE;
  else if (!g_ascii_strcasecmp(s, "false") || !g_ascii_strcasecmp(s, "no"))
    *out = FALSE;
  else
    return -1;
  return 0;
}

/* Fills base (an op_config_t or op_device_def_t) from group, by table. */
static void s_read(s_ctx_t *c, const config_setting_t *group, const char *cat,
                   const cfg_key_t *table, void *base) {
  int n = config_setting_length(group);
  for (int i = 0; i < n && !c->error; i++) {
    const config_setting_t *v = config_setting_get_elem(group, (unsigned)i);
    const char *name = config_setting_name(v);
    const cfg_key_t *k = table;
    while (k->name && strcmp(k->name, name))
      k++;
    if (!k->name) {
      GString *known = g_string_new("");
      for (const cfg_key_t *x = table; x->name; x++)
        g_string_append_printf(known, "%s%s", known->len ? ", " : "", x->name);
      s_fail(c, v, cat, name, "unknown key (known: %s)", known->str);
      g_string_free(known, TRUE);
      return;
    }
    void *field = (char *)base + k->offset;
    const char *str =
        config_setting_type(v) == CONFIG_TYPE_STRING ? config_setting_get_string(v) : NULL;
    long long num;
    gboolean b;
    switch (k->kind) {
    case K_STRING:
    case K_KEY:
      if (!str) {
        s_fail(c, v, cat, name, "must be a string");
      } else if ((long long)strlen(str) < k->min || (long long)strlen(str) > k->max) {
        s_fail(c, v, cat, name, "must be %lld to %lld characters long (got %zu)", k->min, k->max,
               strlen(str));
      } else if (k->kind == K_KEY && !s_valid_key(str)) {
        s_fail(c, v, cat, name, "is not a Z85 CURVE key (40 characters; `outpostctl keygen`)");
      } else {
        g_free(*(char **)field);
        *(char **)field = g_strdup(str);
      }
      break;
    case K_INT:
      if (s_int(v, &num) || num < k->min || num > k->max)
        s_fail(c, v, cat, name, "must be an integer from %lld to %lld", k->min, k->max);
      else
        *(int *)field = (int)num;
      break;
    case K_BOOL:
      if (s_bool(v, &b))
        s_fail(c, v, cat, name, "must be true or false");
      else
        *(gboolean *)field = b;
      break;
    case K_ENUM: {
      int found = -1;
      for (int j = 0; str && k->choices[j]; j++)
        if (!strcmp(str, k->choices[j]))
          found = j;
      if (found < 0) {
        GString *ok = g_string_new("");
        for (int j = 0; k->choices[j]; j++)
          g_string_append_printf(ok, "%s\"%s\"", j ? ", " : "", k->choices[j]);
        s_fail(c, v, cat, name, "must be one of %s (got %s%s%s)", ok->str, str ? "\"" : "",
               str ? str : "a non-string", str ? "\"" : "");
        g_string_free(ok, TRUE);
      } else {
        *(int *)field = found;
      }
      break;
    }
    }
  }
}

/* A device id is the category's name: what viewers ask for, what a device
 * says in hello (at most 64 bytes there), what ZAP hands back as User-Id. */
static int s_valid_id(const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum(id[i]) && !strchr("_.-", id[i]))
      return 0;
  return 1;
}

void op_secret_free(char *secret) {
  if (secret)
    explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

void op_device_def_free(op_device_def_t *d) {
  if (!d)
    return;
  g_free(d->id);
  g_free(d->public_key);
  g_free(d->description);
  op_secret_free(d->pin);
  g_free(d);
}

void op_config_clear(op_config_t *conf) {
  g_free(conf->control_endpoint);
  op_secret_free(conf->secret_key);
  op_secret_free(conf->operator_secret);
  g_free(conf->recordings);
  g_free(conf->ingest_ip);
  g_free(conf->usage_file);
  g_list_free_full(conf->devices, (GDestroyNotify)op_device_def_free);
  memset(conf, 0, sizeof *conf);
}

int op_config_load(const char *file, op_config_t *conf, char **error) {
  memset(conf, 0, sizeof *conf);
  conf->ingest_port = 7710;
  conf->keyframe_interval_ms = 1000;
  conf->linger_ms = 3000;
  conf->gop_cache_kb = 4096;
  conf->gop_cache_ms = 65000;
  conf->control_max_pending = 64;
  conf->ingest_public_port = -1;
  s_ctx_t c = {file, NULL};
  config_t cfg;
  config_init(&cfg);
  if (!config_read_file(&cfg, file)) {
    c.error =
        config_error_type(&cfg) == CONFIG_ERR_FILE_IO
            ? g_strdup_printf("%s: cannot read it: %s", file, strerror(errno))
            : g_strdup_printf("%s:%d: %s", file, config_error_line(&cfg), config_error_text(&cfg));
    config_destroy(&cfg);
    *error = c.error;
    return -1;
  }
  config_setting_t *root = config_root_setting(&cfg);
  int n = config_setting_length(root);
  gboolean have_general = FALSE;
  for (int i = 0; i < n && !c.error; i++) {
    config_setting_t *cat = config_setting_get_elem(root, (unsigned)i);
    const char *name = config_setting_name(cat);
    if (config_setting_type(cat) != CONFIG_TYPE_GROUP) {
      s_fail(&c, cat, name, NULL, "expected a category (name: { ... })");
    } else if (!strcmp(name, "general")) {
      have_general = TRUE;
      s_read(&c, cat, name, s_general, conf);
    } else if (!s_valid_id(name)) {
      s_fail(&c, cat, name, NULL, "a device id is 1-64 letters, digits, '_', '.' or '-'");
    } else {
      op_device_def_t *d = g_malloc0(sizeof *d);
      d->id = g_strdup(name);
      d->mode = MODE_ON_DEMAND;
      d->line = config_setting_source_line(cat);
      conf->devices = g_list_append(conf->devices, d);
      s_read(&c, cat, name, s_device, d);
      if (!c.error && !d->public_key)
        s_fail(&c, cat, name, "public_key", "missing: a device's CURVE public key is its identity");
      for (GList *l = conf->devices; l && !c.error && l->data != d; l = l->next)
        if (!strcmp(((op_device_def_t *)l->data)->public_key, d->public_key))
          s_fail(&c, cat, name, "public_key", "the same key as device %s (line %d)",
                 ((op_device_def_t *)l->data)->id, ((op_device_def_t *)l->data)->line);
    }
  }
  struct in_addr ip;
  if (!c.error && !have_general)
    s_fail(&c, root, "general", NULL, "missing");
  if (!c.error && !conf->secret_key)
    s_fail(&c, config_lookup(&cfg, "general"), "general", "server_secret_key",
           "missing (`outpostctl keygen` makes a key pair)");
  if (!c.error && !conf->operator_secret)
    s_fail(&c, config_lookup(&cfg, "general"), "general", "operator_secret", "missing");
  if (!c.error && conf->ingest_ip && inet_pton(AF_INET, conf->ingest_ip, &ip) != 1)
    s_fail(&c, config_lookup(&cfg, "general.ingest_ip"), "general", "ingest_ip",
           "is not an IPv4 address");
  if (!c.error && conf->usage_file &&
      (conf->usage_file[0] != '/' || g_str_has_suffix(conf->usage_file, "/")))
    s_fail(&c, config_lookup(&cfg, "general.usage_file"), "general", "usage_file",
           "must be an absolute path to a file (got \"%s\")", conf->usage_file);
  if (!c.error && conf->control_endpoint && strncmp(conf->control_endpoint, "tcp://", 6))
    s_fail(&c, config_lookup(&cfg, "general.control"), "general", "control",
           "must be tcp://ADDRESS:PORT");
  config_destroy(&cfg);
  if (c.error) {
    op_config_clear(conf);
    *error = c.error;
    return -1;
  }
  if (!conf->control_endpoint)
    conf->control_endpoint = g_strdup("tcp://0.0.0.0:7700");
  if (!conf->recordings)
    conf->recordings = g_strdup("/tmp");
  if (!conf->ingest_ip)
    conf->ingest_ip = g_strdup("0.0.0.0");
  if (conf->ingest_public_port < 0)
    conf->ingest_public_port = conf->ingest_port;
  *error = NULL;
  return 0;
}
