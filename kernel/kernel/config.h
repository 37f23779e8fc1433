/* The device configuration (libconfig), loaded whole and checked before use:
 * the kernel never starts half a configuration. */
#ifndef OUTPOST_CONFIG_H
#define OUTPOST_CONFIG_H

#include <stddef.h>

typedef enum { RESTART_PERMANENT, RESTART_TRANSIENT, RESTART_TEMPORARY } restart_t;

typedef struct module_conf {
  char *name;     /* owned; unique, [a-z0-9_-] */
  char *plugin;   /* owned; resolved to <module_dir>/<plugin>.so */
  char *fallback; /* owned; NULL when none */
  char *input;    /* owned; name of the previous module in the list, NULL for the first */
  restart_t restart;
  char *settings_json; /* owned; the `settings` group as compact JSON, "{}" when absent */
} module_conf_t;

typedef struct kconf {
  char *path;         /* owned; the file it was read from */
  char *device_id;    /* owned */
  char *profile;      /* owned; device.profile, NULL when not set (modules: "cellular") */
  char *runtime_dir;  /* owned; sockets and frame rings */
  char **module_dirs; /* owned; absolute folders searched in order for <plugin>.so */
  size_t n_module_dirs;
  int intensity; /* restarts allowed within period_ms before a module is failed */
  int period_ms, heartbeat_timeout_ms, grace_ms, backoff_min_ms, backoff_max_ms;
  size_t n_modules;
  module_conf_t *modules; /* owned array of n_modules */
} kconf_t;

/* Loads and validates path. NULL on any error, with "file:line: key: problem"
 * written to err. The result is owned by the caller. */
kconf_t *kconf_load(const char *path, char *err, size_t errlen);
void kconf_destroy(kconf_t **conf);

/* 1 when the two entries would run the same process the same way. */
int module_conf_equal(const module_conf_t *a, const module_conf_t *b);
/* The path of plugin's .so in the first module_dir that has it; malloc'd, caller frees. */
char *kconf_plugin_path(const kconf_t *conf, const char *plugin);
const char *restart_name(restart_t r);
/* Deep copy into dst (owned by the caller, freed with module_conf_clear). */
void module_conf_copy(module_conf_t *dst, const module_conf_t *src);
void module_conf_clear(module_conf_t *m);

#endif
