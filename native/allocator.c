/*
 * fmq's allocator tuning (glibc only): how freed memory of large messages is kept.
 *
 *   tuneAllocator(mmapThreshold, trimThreshold) -> boolean   false where there is nothing to tune
 *
 * Why: every chunk of file content is a buffer of about a megabyte, allocated by one thread
 * (ZeroMQ's I/O thread receives into it, a worker reads a file into it) and freed by another.
 * With glibc's defaults a thread's arena gives its free top back to the system as soon as it
 * exceeds twice the last large block (about 2 MB), and the next chunks fault their pages in
 * again: receiving 1 GiB cost some 40,000 page faults, more CPU than the copies themselves on
 * this virtual machine. A fixed mmap threshold above the chunk size keeps chunks in arenas,
 * and a trim threshold of a few chunk windows lets an arena keep what it will reuse at once
 * (src/util/memory.ts).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

static napi_value tune_allocator(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool tuned = false;
#ifdef __GLIBC__
  int64_t mmap_threshold = 0, trim_threshold = 0;
  if (argc == 2 && napi_get_value_int64(env, argv[0], &mmap_threshold) == napi_ok &&
      napi_get_value_int64(env, argv[1], &trim_threshold) == napi_ok && mmap_threshold > 0 && trim_threshold > 0 &&
      mmap_threshold <= 32 * 1024 * 1024 && trim_threshold <= 1024 * 1024 * 1024) {
    tuned = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
  }
#endif
  napi_value result;
  napi_get_boolean(env, tuned, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "tuneAllocator", NAPI_AUTO_LENGTH, tune_allocator, NULL, &fn);
  napi_set_named_property(env, exports, "tuneAllocator", fn);
  return exports;
}
