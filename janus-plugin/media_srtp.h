/* media_srtp.c: SRTP on the ingest leg. All but op_srtp_enabled and
 * op_srtp_profile_name with the device's mutex held. */
#ifndef OUTPOST_PLUGIN_MEDIA_SRTP_H
#define OUTPOST_PLUGIN_MEDIA_SRTP_H

#include "device.h"

json_t *op_srtp_session_new(op_device_t *d); /* fresh keys, as sent to the device; NULL: failed */
void op_srtp_clear(op_device_t *d);
int op_srtp_unprotect(op_device_t *d, char *buf, int *len, gboolean rtcp);  /* srtp_err_status_t */
int op_srtp_protect_rtcp(op_device_t *d, char *buf, int *len, size_t size); /* 0 / -1 */
const char *op_srtp_profile_name(void);
gboolean op_srtp_enabled(void); /* FALSE: srtp_profile "none", media in clear */

#endif
