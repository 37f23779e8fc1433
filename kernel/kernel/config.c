#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys the kernel knows; anything else is a typo and an error (a silently
 * ignored `restrat = "temporary"` would cost someone a night). */
static const char *s_top_keys[] = {"device",     "runtime_dir", "module_dir",
                                   "supervisor", "modules",     NULL};
static const char *s_supervisor_keys[] = {
    "intensity", "period", "heartbeat_timeout", "grace", "backoff_min", "backoff_max", NULL};
static const char *s_module_keys[] = {"name", "plugin", "restart", "fallback", "settings", NULL};
static const char *s_device_keys[] = {"id", "profile", NULL};
/* device.profile: what the device is for, given to every module as
 * settings.profile (its own setting wins): each module chooses its defaults
 * by it (capture and encoder 60 fps on a LAN, the encoder's bitrate, the
 * uplink's pacing). The kernel checks the name only. */
static const char *s_profiles[] = {"cellular", "lan", NULL};

typedef struct {
  const char *file;
  char *err;
  size_t errlen;
} s_ctx_t;

static int s_fail(s_ctx_t *c, int line, const char *key, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, line, key, msg);
  else /* a key that is missing altogether has no line */
    snprintf(c->err, c->errlen, "%s: %s: %s", c->file, key, msg);
  return -1;
}

static int s_line(const config_setting_t *s) {
  return s ? (int)config_setting_source_line(s) : 0;
}

static int s_known(s_ctx_t *c, const config_setting_t *group, const char *prefix,
                   const char **keys) {
  for (int i = 0; i < config_setting_length(group); i++) {
    const config_setting_t *e = config_setting_get_elem(group, (unsigned)i);
    const char *name = config_setting_name(e);
    int ok = 0;
    for (const char **k = keys; *k; k++)
      ok |= name && !strcmp(name, *k);
    if (!ok)
      return s_fail(c, s_line(e), name ? name : "?", "unknown key in %s", prefix);
  }
  return 0;
}

/* A string member: required or optional (then *out stays NULL when absent). */
static int s_string(s_ctx_t *c, const config_setting_t *group, const char *key, const char *where,
                    int required, char **out) {
  const config_setting_t *s = config_setting_get_member(group, key);
  if (!s) {
    if (required)
      return s_fail(c, s_line(group), where, "missing key '%s'", key);
    return 0;
  }
  const char *v = config_setting_get_string(s);
  if (!v || !*v)
    return s_fail(c, s_line(s), where, "'%s' must be a non-empty string", key);
  *out = strdup(v);
  return 0;
}

/* A duration in seconds (int or float) into milliseconds, within [lo, hi]. */
static int s_seconds(s_ctx_t *c, const config_setting_t *group, const char *key, double lo,
                     double hi, int *out_ms) {
  const config_setting_t *s = group ? config_setting_get_member(group, key) : NULL;
  if (!s)
    return 0;
  int t = config_setting_type(s);
  if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64 && t != CONFIG_TYPE_FLOAT)
    return s_fail(c, s_line(s), key, "must be a number of seconds");
  double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : config_setting_get_int64(s);
  if (v < lo || v > hi)
    return s_fail(c, s_line(s), key, "must be between %g and %g seconds", lo, hi);
  *out_ms = (int)(v * 1000.0 + 0.5);
  return 0;
}

static json_t *s_to_json(const config_setting_t *s) {
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_GROUP: {
    json_t *o = json_object();
    for (int i = 0; i < config_setting_length(s); i++) {
      const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
      json_object_set_new(o, config_setting_name(e), s_to_json(e));
    }
    return o;
  }
  case CONFIG_TYPE_ARRAY:
  case CONFIG_TYPE_LIST: {
    json_t *a = json_array();
    for (int i = 0; i < config_setting_length(s); i++)
      json_array_append_new(a, s_to_json(config_setting_get_elem(s, (unsigned)i)));
    return a;
  }
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return json_integer(config_setting_get_int64(s));
  case CONFIG_TYPE_FLOAT:
    return json_real(config_setting_get_float(s));
  case CONFIG_TYPE_STRING:
    return json_string(config_setting_get_string(s));
  case CONFIG_TYPE_BOOL:
    return json_boolean(config_setting_get_bool(s));
  default:
    return json_null();
  }
}

static int s_valid_name(const char *n) {
  if (!*n || strlen(n) > 32)
    return 0;
  for (const char *p = n; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
      return 0;
  return 1;
}

char *kconf_plugin_path(const kconf_t *conf, const char *plugin) {
  for (size_t i = 0; i < conf->n_module_dirs; i++) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s.so", conf->module_dirs[i], plugin) < 0)
      return NULL;
    if (access(p, R_OK) == 0 || i + 1 == conf->n_module_dirs)
      return p; /* the first folder that has it; else the last candidate, for the message */
    free(p);
  }
  return NULL;
}

static int s_plugin_exists(s_ctx_t *c, kconf_t *k, const config_setting_t *s, const char *key,
                           const char *plugin) {
  if (!s_valid_name(plugin))
    return s_fail(c, s_line(s), key, "'%s' is not a plugin name", plugin);
  char *path = kconf_plugin_path(k, plugin);
  int ok = path && access(path, R_OK) == 0;
  int rc = ok ? 0 : s_fail(c, s_line(s), key, "unknown plugin '%s' (no %s)", plugin, path);
  free(path);
  return rc;
}

static int s_module(s_ctx_t *c, kconf_t *k, const config_setting_t *g, size_t i) {
  module_conf_t *m = &k->modules[i];
  char where[48];
  snprintf(where, sizeof where, "modules.[%zu]", i);
  if (!config_setting_is_group(g))
    return s_fail(c, s_line(g), where, "must be a group { name = ...; plugin = ...; }");
  if (s_known(c, g, where, s_module_keys) || s_string(c, g, "name", where, 1, &m->name) ||
      s_string(c, g, "plugin", where, 1, &m->plugin) ||
      s_string(c, g, "fallback", where, 0, &m->fallback))
    return -1;
  snprintf(where, sizeof where, "modules.%s", m->name);
  if (!s_valid_name(m->name))
    return s_fail(c, s_line(g), where, "name must be 1-32 of [a-z0-9_-]");
  for (size_t j = 0; j < i; j++)
    if (!strcmp(k->modules[j].name, m->name))
      return s_fail(c, s_line(g), where, "duplicate module name");
  if (s_plugin_exists(c, k, config_setting_get_member(g, "plugin"), where, m->plugin))
    return -1;
  if (m->fallback &&
      s_plugin_exists(c, k, config_setting_get_member(g, "fallback"), where, m->fallback))
    return -1;
  char *restart = NULL;
  if (s_string(c, g, "restart", where, 0, &restart))
    return -1;
  m->restart = RESTART_PERMANENT;
  if (restart) {
    if (!strcmp(restart, "transient"))
      m->restart = RESTART_TRANSIENT;
    else if (!strcmp(restart, "temporary"))
      m->restart = RESTART_TEMPORARY;
    else if (strcmp(restart, "permanent")) {
      free(restart);
      return s_fail(c, s_line(config_setting_get_member(g, "restart")), where,
                    "restart must be permanent, transient or temporary");
    }
    free(restart);
  }
  const config_setting_t *settings = config_setting_get_member(g, "settings");
  if (settings && !config_setting_is_group(settings))
    return s_fail(c, s_line(settings), where, "settings must be a group { ... }");
  json_t *js = settings ? s_to_json(settings) : json_object();
  if (k->profile && !json_object_get(js, "profile"))
    json_object_set_new(js, "profile", json_string(k->profile));
  m->settings_json = json_dumps(js, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(js);
  m->input = i > 0 ? strdup(k->modules[i - 1].name) : NULL;
  return 0;
}

/* One folder, relative to the config file's folder (or absolute). */
static int s_add_module_dir(s_ctx_t *c, kconf_t *k, const config_setting_t *s, const char *v) {
  char buf[PATH_MAX];
  if (v[0] == '/') {
    snprintf(buf, sizeof buf, "%s", v);
  } else {
    char *copy = strdup(c->file);
    snprintf(buf, sizeof buf, "%s/%s", dirname(copy), v);
    free(copy);
  }
  char *abs = realpath(buf, NULL);
  if (!abs)
    return s_fail(c, s_line(s), "module_dir", "%s: %s", buf, strerror(errno));
  k->module_dirs = realloc(k->module_dirs, sizeof *k->module_dirs * (k->n_module_dirs + 1));
  k->module_dirs[k->n_module_dirs++] = abs;
  return 0;
}

/* module_dir: a folder or a list of folders searched in order; default:
 * ../modules next to this binary. */
static int s_module_dirs(s_ctx_t *c, kconf_t *k, config_t *cfg) {
  const config_setting_t *s = config_lookup(cfg, "module_dir");
  if (s && config_setting_type(s) == CONFIG_TYPE_STRING)
    return s_add_module_dir(c, k, s, config_setting_get_string(s));
  if (s && (config_setting_is_list(s) || config_setting_is_array(s)) &&
      config_setting_length(s) > 0) {
    for (int i = 0; i < config_setting_length(s); i++) {
      const char *v = config_setting_get_string_elem(s, i);
      if (!v)
        return s_fail(c, s_line(s), "module_dir", "must be a folder or a list of folders");
      if (s_add_module_dir(c, k, s, v))
        return -1;
    }
    return 0;
  }
  if (s)
    return s_fail(c, s_line(s), "module_dir", "must be a folder or a list of folders");
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0)
    return s_fail(c, 0, "module_dir", "cannot find this binary: %s", strerror(errno));
  buf[n] = 0;
  char *copy = strdup(buf);
  snprintf(buf, sizeof buf, "%s/../modules", dirname(copy));
  free(copy);
  return s_add_module_dir(c, k, NULL, buf);
}

static int s_parse(s_ctx_t *c, kconf_t *k, config_t *cfg) {
  config_setting_t *root = config_root_setting(cfg);
  if (s_known(c, root, "the top level", s_top_keys))
    return -1;
  config_setting_t *dev = config_lookup(cfg, "device");
  if (!dev || !config_setting_is_group(dev))
    return s_fail(c, s_line(dev), "device", "missing group device = { id = \"...\"; }");
  if (s_known(c, dev, "device", s_device_keys) ||
      s_string(c, dev, "id", "device.id", 1, &k->device_id) ||
      s_string(c, dev, "profile", "device.profile", 0, &k->profile))
    return -1;
  if (k->profile) {
    int ok = 0;
    for (const char **p = s_profiles; *p; p++)
      ok |= !strcmp(*p, k->profile);
    if (!ok)
      return s_fail(c, s_line(config_setting_get_member(dev, "profile")), "device.profile",
                    "must be \"cellular\" (the default) or \"lan\"");
  }
  if (s_string(c, root, "runtime_dir", "runtime_dir", 0, &k->runtime_dir))
    return -1;
  if (!k->runtime_dir && asprintf(&k->runtime_dir, "/dev/shm/outpost-%s", k->device_id) < 0)
    return -1;
  /* Sockets live there: an AF_UNIX path holds 107 bytes. */
  if (strlen(k->runtime_dir) > 64)
    return s_fail(c, s_line(config_lookup(cfg, "runtime_dir")), "runtime_dir",
                  "longer than 64 bytes (socket paths would not fit)");
  k->intensity = 5;
  k->period_ms = 30000;
  k->heartbeat_timeout_ms = 3000;
  k->grace_ms = 3000;
  k->backoff_min_ms = 100;
  k->backoff_max_ms = 5000;
  config_setting_t *sup = config_lookup(cfg, "supervisor");
  if (sup) {
    if (s_known(c, sup, "supervisor", s_supervisor_keys))
      return -1;
    int intensity;
    if (config_setting_lookup_int(sup, "intensity", &intensity) == CONFIG_TRUE) {
      if (intensity < 0 || intensity > 1000)
        return s_fail(c, s_line(config_setting_get_member(sup, "intensity")),
                      "supervisor.intensity", "must be 0..1000");
      k->intensity = intensity;
    }
    if (s_seconds(c, sup, "period", 0.1, 86400, &k->period_ms) ||
        s_seconds(c, sup, "heartbeat_timeout", 0.5, 600, &k->heartbeat_timeout_ms) ||
        s_seconds(c, sup, "grace", 0.1, 600, &k->grace_ms) ||
        s_seconds(c, sup, "backoff_min", 0.01, 60, &k->backoff_min_ms) ||
        s_seconds(c, sup, "backoff_max", 0.01, 3600, &k->backoff_max_ms))
      return -1;
  }
  if (s_module_dirs(c, k, cfg))
    return -1;
  config_setting_t *mods = config_lookup(cfg, "modules");
  if (!mods)
    return s_fail(c, 0, "modules", "missing list modules = ( { name = ...; plugin = ...; } )");
  if (!config_setting_is_list(mods) || config_setting_length(mods) < 1)
    return s_fail(c, s_line(mods), "modules", "must be a non-empty list ( {...}, {...} )");
  k->n_modules = (size_t)config_setting_length(mods);
  k->modules = calloc(k->n_modules, sizeof *k->modules);
  for (size_t i = 0; i < k->n_modules; i++)
    if (s_module(c, k, config_setting_get_elem(mods, (unsigned)i), i))
      return -1;
  return 0;
}

/* libconfig 1.5 reports a missing @include file as a bare "syntax error" at
 * the including line: name the file instead when that is what happened. */
static void s_include_hint(const char *path, const char *dir, int line, char *out, size_t outlen) {
  FILE *f = fopen(path, "r");
  char buf[512], name[256];
  for (int n = 1; f && fgets(buf, sizeof buf, f); n++) {
    if (n != line)
      continue;
    const char *at = strstr(buf, "@include");
    if (at && sscanf(at, "@include \"%255[^\"]\"", name) == 1) {
      char full[PATH_MAX + 256];
      snprintf(full, sizeof full, "%s/%s", dir, name);
      if (access(full, R_OK))
        snprintf(out, outlen, "cannot include %s: %s", full, strerror(errno));
    }
    break;
  }
  if (f)
    fclose(f);
}

kconf_t *kconf_load(const char *path, char *err, size_t errlen) {
  s_ctx_t c = {path, err, errlen};
  config_t cfg;
  config_init(&cfg);
  kconf_t *k = calloc(1, sizeof *k);
  k->path = strdup(path);
  int rc;
  /* @include "x.cfg" is relative to this file's folder, like module_dir: it
   * keeps secrets (the uplink's keys) in a file of their own. */
  char *copy = strdup(path);
  const char *dir = dirname(copy); /* points into copy */
  config_set_include_dir(&cfg, dir);
  if (config_read_file(&cfg, path) != CONFIG_TRUE) {
    if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
      rc = s_fail(&c, 0, "file", "cannot read: %s", strerror(errno ? errno : ENOENT));
    else {
      char hint[PATH_MAX + 300] = "";
      s_include_hint(path, dir, config_error_line(&cfg), hint, sizeof hint);
      rc = s_fail(&c, config_error_line(&cfg), hint[0] ? "@include" : "syntax", "%s",
                  hint[0] ? hint : config_error_text(&cfg));
    }
  } else {
    rc = s_parse(&c, k, &cfg);
  }
  config_destroy(&cfg);
  free(copy);
  if (rc)
    kconf_destroy(&k);
  return k;
}

void kconf_destroy(kconf_t **conf) {
  kconf_t *k = *conf;
  if (!k)
    return;
  for (size_t i = 0; k->modules && i < k->n_modules; i++)
    module_conf_clear(&k->modules[i]);
  free(k->modules);
  free(k->path);
  free(k->device_id);
  free(k->profile);
  free(k->runtime_dir);
  for (size_t i = 0; i < k->n_module_dirs; i++)
    free(k->module_dirs[i]);
  free(k->module_dirs);
  free(k);
  *conf = NULL;
}

static int s_streq(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

int module_conf_equal(const module_conf_t *a, const module_conf_t *b) {
  return s_streq(a->name, b->name) && s_streq(a->plugin, b->plugin) &&
         s_streq(a->fallback, b->fallback) && s_streq(a->input, b->input) &&
         a->restart == b->restart && s_streq(a->settings_json, b->settings_json);
}

const char *restart_name(restart_t r) {
  return r == RESTART_TRANSIENT ? "transient" : r == RESTART_TEMPORARY ? "temporary" : "permanent";
}

static char *s_dup(const char *s) {
  return s ? strdup(s) : NULL;
}

void module_conf_copy(module_conf_t *dst, const module_conf_t *src) {
  dst->name = s_dup(src->name);
  dst->plugin = s_dup(src->plugin);
  dst->fallback = s_dup(src->fallback);
  dst->input = s_dup(src->input);
  dst->restart = src->restart;
  dst->settings_json = s_dup(src->settings_json);
}

void module_conf_clear(module_conf_t *m) {
  free(m->name);
  free(m->plugin);
  free(m->fallback);
  free(m->input);
  free(m->settings_json);
  memset(m, 0, sizeof *m);
}
