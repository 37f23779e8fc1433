#include "gateway.h"

janus_callbacks *op_gateway;
janus_plugin *op_self;

void op_gateway_set(janus_callbacks *gateway, janus_plugin *self) {
  op_gateway = gateway;
  op_self = self;
}
