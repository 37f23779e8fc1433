#include "timing.h"

void op_timing_push(op_timing_t *t, uint32_t ts, const rtp_timing_t *v, int64_t at_us) {
  /* rtp_timing_find gives 0..510 in 2 ms steps: nothing here can overflow. */
  t->frames[t->head] = (op_timing_frame_t){ts, (uint16_t)v->in_ms, (uint16_t)v->coded_ms,
                                           (uint16_t)v->sent_ms, at_us};
  t->head = (t->head + 1) % OP_TIMING_FRAMES;
  if (t->n < OP_TIMING_FRAMES)
    t->n++;
  t->received++;
}

int op_timing_renew(op_timing_t *t, int64_t now_us) {
  if (t->asked_us && now_us - t->asked_us < OP_TIMING_RENEW_US)
    return 0;
  t->asked_us = now_us;
  return 1;
}

void op_timing_reset(op_timing_t *t) {
  t->head = t->n = 0;
  t->asked_us = 0;
}

json_t *op_timing_json(const op_timing_t *t, uint32_t ts_shift) {
  json_t *a = json_array();
  for (unsigned i = 0; i < t->n; i++) {
    const op_timing_frame_t *f =
        &t->frames[(t->head + OP_TIMING_FRAMES - t->n + i) % OP_TIMING_FRAMES];
    json_array_append_new(a, json_pack("{s:I, s:i, s:i, s:i, s:f}", "ts",
                                       (json_int_t)(uint32_t)(f->ts - ts_shift), "in", f->in_ms,
                                       "coded", f->coded_ms, "sent", f->sent_ms, "at",
                                       (double)f->at_us / 1000.0));
  }
  return a;
}
