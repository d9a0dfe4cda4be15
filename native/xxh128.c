/*
 * fmq's native XXH3-128 (what our peers call XXH128: seed 0, as `xxhsum -H2` prints), from
 * Debian's libxxhash-dev header, inlined (XXH_INLINE_ALL): nothing to link, nothing to load.
 *
 *   stateBytes                             octets of a state (a Buffer the caller allocates)
 *   reset(state)                           a new hash in that memory
 *   update(state, data: Uint8Array)        feeds data, read where it lies (no copy)
 *   digest(state) -> string                the digest so far: 32 hex digits, canonical (big-endian)
 *   copy(from, to)                         `to` becomes an independent hash in the same state
 *
 * Why: hash-wasm's XXH3-128 copies every 16 KiB into WebAssembly memory before hashing it;
 * about 0.2 s of CPU per GiB on each side of a transfer, where the hash itself here is a
 * fraction of that (src/fs/digest.ts says what was measured).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/*
 * A state lives in memory the caller allocates (a Buffer of STATE_BYTES: from Node's pool for
 * a small file, no finalizer, nothing for the collector to track), aligned here as XXH3 needs.
 */
#define STATE_BYTES (sizeof(XXH3_state_t) + 64)

/* The memory of a Uint8Array, where it lies; false (and a TypeError thrown) for anything else. */
static bool bytes_of(napi_env env, napi_value value, void **data, size_t *length, const char *what) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) == napi_ok && type == napi_uint8_array) return true;
  napi_throw_type_error(env, NULL, what);
  return false;
}

static XXH3_state_t *state_of(napi_env env, napi_value value) {
  void *data;
  size_t length;
  if (!bytes_of(env, value, &data, &length, "xxh128: not a hash state")) return NULL;
  if (length < STATE_BYTES) {
    napi_throw_type_error(env, NULL, "xxh128: not a hash state");
    return NULL;
  }
  return (XXH3_state_t *)(((uintptr_t)data + 63) & ~(uintptr_t)63);
}

static size_t args(napi_env env, napi_callback_info info, napi_value *argv, size_t wanted, const char *usage) {
  size_t argc = wanted;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != wanted) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return argc;
}

/* The call's arguments, the first being a state: that state, aligned; NULL once an error is thrown. */
static XXH3_state_t *state_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t wanted, const char *usage) {
  return args(env, info, argv, wanted, usage) ? state_of(env, argv[0]) : NULL;
}

static napi_value reset(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  XXH3_state_t *state = state_arg(env, info, argv, 1, "xxh128.reset(state)");
  if (state != NULL) {
    XXH3_INITSTATE(state);
    XXH3_128bits_reset(state);
  }
  return NULL;
}

static napi_value update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  XXH3_state_t *state = state_arg(env, info, argv, 2, "xxh128.update(state, data)");
  if (state == NULL) return NULL;
  void *data;
  size_t length;
  if (!bytes_of(env, argv[1], &data, &length, "xxh128.update: data must be a Uint8Array")) return NULL;
  if (length > 0) XXH3_128bits_update(state, data, length);
  return NULL;
}

static napi_value digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  XXH3_state_t *state = state_arg(env, info, argv, 1, "xxh128.digest(state)");
  if (state == NULL) return NULL;
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state));
  static const char digits[] = "0123456789abcdef";
  char hex[2 * sizeof canonical.digest];
  for (size_t i = 0; i < sizeof canonical.digest; i++) {
    hex[2 * i] = digits[canonical.digest[i] >> 4];
    hex[2 * i + 1] = digits[canonical.digest[i] & 15];
  }
  napi_value result;
  if (napi_create_string_latin1(env, hex, sizeof hex, &result) != napi_ok) return NULL;
  return result;
}

static napi_value copy(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, argv, 2, "xxh128.copy(from, to)")) return NULL;
  XXH3_state_t *from = state_of(env, argv[0]);
  XXH3_state_t *to = from == NULL ? NULL : state_of(env, argv[1]);
  if (to != NULL) XXH3_copyState(to, from);
  return NULL;
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } functions[] = {{"reset", reset}, {"update", update}, {"digest", digest}, {"copy", copy}};
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  napi_value bytes;
  napi_create_uint32(env, (uint32_t)STATE_BYTES, &bytes);
  napi_set_named_property(env, exports, "stateBytes", bytes);
  return exports;
}
