/*
 * build/fmq_delta.node: the gear-hash loop of delta transfer's chunking (issue 19), which
 * JavaScript runs at about 400 MB/s and C at about 3 GB/s. src/fs/delta-native.ts loads it;
 * without it the JavaScript loop runs, and cuts at the same places.
 *
 *   cut(data, start, end, min, avg, max, maskSmall, maskLarge, final) -> offset | -1
 *     Where the chunk starting at `start` ends (FastCDC's normalized gear hash, spec/fmq_msg.xml
 *     "DELTA"), exactly as cutPoint in src/fs/chunking.ts; the gear table is given once by
 *     setGear(Int32Array(256)), so the spec's table is defined in one place only.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <stdint.h>
#include <string.h>

static uint32_t gear[256];
static int gear_set = 0;

static napi_value fail(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}


static napi_value set_gear(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "EINVAL", "setGear(table)");
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_int32_array || length != 256)
    return fail(env, "EINVAL", "setGear: an Int32Array of 256");
  memcpy(gear, data, sizeof gear);
  gear_set = 1;
  return NULL;
}

static int number(napi_env env, napi_value value, int64_t *out) {
  return napi_get_value_int64(env, value, out) == napi_ok;
}

static napi_value cut(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) return fail(env, "EINVAL", "cut: 9 arguments");
  if (!gear_set) return fail(env, "EINVAL", "cut: setGear first");
  napi_typedarray_type type;
  size_t length;
  void *raw;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &raw, NULL, NULL) != napi_ok || type != napi_uint8_array) return fail(env, "EINVAL", "cut: a Uint8Array");
  int64_t start, end, min, avg, max, small, large;
  bool final;
  if (!number(env, argv[1], &start) || !number(env, argv[2], &end) || !number(env, argv[3], &min) || !number(env, argv[4], &avg) || !number(env, argv[5], &max) ||
      !number(env, argv[6], &small) || !number(env, argv[7], &large) || napi_get_value_bool(env, argv[8], &final) != napi_ok)
    return fail(env, "EINVAL", "cut: numbers");
  if (start < 0 || end < start || (size_t)end > length) return fail(env, "ERANGE", "cut: start and end outside the data");
  const uint8_t *data = raw;
  const uint32_t mask_small = (uint32_t)small, mask_large = (uint32_t)large;
  int64_t result = -1;
  if (end - start <= min) {
    result = final ? end : -1;
  } else {
    uint32_t hash = 0;
    int64_t i = start + min;
    const int64_t normal = start + avg < end ? start + avg : end;
    for (; i < normal; i++) {
      hash = (hash << 1) + gear[data[i]];
      if ((hash & mask_small) == 0) {
        result = i + 1;
        goto done;
      }
    }
    const int64_t limit = start + max < end ? start + max : end;
    for (; i < limit; i++) {
      hash = (hash << 1) + gear[data[i]];
      if ((hash & mask_large) == 0) {
        result = i + 1;
        goto done;
      }
    }
    if (limit == start + max) result = limit;
    else result = final ? end : -1;
  }
done:;
  napi_value out;
  napi_create_int64(env, result, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"setGear", NULL, set_gear, NULL, NULL, NULL, napi_default, NULL},
      {"cut", NULL, cut, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods);
  return exports;
}
