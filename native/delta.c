/*
 * build/fmq_delta.node: the gear-hash loop of delta transfer's chunking (issue 19), which
 * JavaScript runs at about 400 MB/s and C at about 3 GB/s. src/fs/delta-native.ts loads it;
 * without it the JavaScript loop runs, and cuts at the same places.
 *
 *   cut(data, start, end, min, avg, max, maskSmall, maskLarge, final) -> offset | -1
 *     Where the chunk starting at `start` ends (FastCDC's normalized gear hash, spec/fmq_msg.xml
 *     "DELTA"), exactly as cutPoint in src/fs/chunking.ts; the gear table is given once by
 *     setGear(Int32Array(256)), so the spec's table is defined in one place only.
 *
 *   chunksOfFile(fd, size, min, avg, max, maskSmall, maskLarge, limit) -> Promise<Buffer | undefined>
 *     The chunks of the first `size` octets of the open file `fd` (fewer when it is shorter),
 *     cut as cut() does and hashed by xxh3-64 (seed 0), as 12 octets each: the length as a
 *     number-4 and the hash as a number-8, network order (the signature's packing,
 *     src/fs/chunking.ts). Undefined when there are more than `limit` chunks. Read, cut and
 *     hashed on a thread of libuv's pool, a window at a time into memory kept for the next
 *     file: one call per file instead of one per chunk, and the caller's thread stays free.
 *     Only with Debian's libxxhash-dev (xxhash.h), inlined as in xxh128.c.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __has_include(<xxhash.h>)
#define XXH_INLINE_ALL
#include <xxhash.h>
#define HAVE_XXHASH 1
#endif

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

/* Where the chunk starting at `start` ends, within data[start, end); -1 when more data must come first. */
static int64_t cut_point(const uint8_t *data, int64_t start, int64_t end, int64_t min, int64_t avg, int64_t max, uint32_t mask_small, uint32_t mask_large, bool final) {
  if (end - start <= min) return final ? end : -1;
  uint32_t hash = 0;
  int64_t i = start + min;
  const int64_t normal = start + avg < end ? start + avg : end;
  for (; i < normal; i++) {
    hash = (hash << 1) + gear[data[i]];
    if ((hash & mask_small) == 0) return i + 1;
  }
  const int64_t limit = start + max < end ? start + max : end;
  for (; i < limit; i++) {
    hash = (hash << 1) + gear[data[i]];
    if ((hash & mask_large) == 0) return i + 1;
  }
  if (limit == start + max) return limit;
  return final ? end : -1;
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
  const int64_t result = cut_point(raw, start, end, min, avg, max, (uint32_t)small, (uint32_t)large, final);
  napi_value out;
  napi_create_int64(env, result, &out);
  return out;
}

#ifdef HAVE_XXHASH
#include <pthread.h>

/* Octets read at once (more when the largest chunk is bigger: two of them always fit). */
#define WINDOW (4 << 20)
#define ENTRY 12

/*
 * The windows of the last file cut, kept for the next one: the first touch of fresh memory
 * costs about 3 ms per MiB here (a page fault each 4 KiB), more than reading it. Two, as a
 * large file is cut by two threads at once; of at most 8 MiB each (the largest chunks would
 * otherwise keep 64 MiB of a server's memory).
 */
#define KEPT 2
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *kept_window[KEPT];
static size_t kept_size[KEPT];

/* A window of at least *size octets (*size becomes its size): one kept, else a new one. */
static uint8_t *take_window(size_t *size) {
  uint8_t *window = NULL, *small = NULL;
  pthread_mutex_lock(&kept_lock);
  for (int i = 0; i < KEPT && window == NULL; i++) {
    if (kept_window[i] == NULL) continue;
    if (kept_size[i] >= *size) {
      window = kept_window[i];
      *size = kept_size[i];
    } else {
      small = kept_window[i];
    }
    kept_window[i] = NULL;
  }
  pthread_mutex_unlock(&kept_lock);
  free(small);
  return window != NULL ? window : malloc(*size);
}

/* Windows larger than this (chunks averaging over 1 MiB: files over 4 GiB) are freed, not kept. */
#define KEPT_MAX (2 * WINDOW)

static void give_window(uint8_t *window, size_t size) {
  if (size > KEPT_MAX) {
    free(window);
    return;
  }
  pthread_mutex_lock(&kept_lock);
  for (int i = 0; i < KEPT && window != NULL; i++) {
    if (kept_window[i] != NULL) continue;
    kept_window[i] = window;
    kept_size[i] = size;
    window = NULL;
  }
  pthread_mutex_unlock(&kept_lock);
  free(window);
}

/* Chunks as 12 octets each (length as number-4, xxh3-64 as number-8, network order). */
typedef struct {
  uint8_t *entries;
  size_t count, capacity;
} chunk_list;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t size, min, avg, max, limit;
  uint32_t mask_small, mask_large;
  chunk_list list;
  int error;
  bool over;
} chunks_job;

static bool add_entry(chunk_list *list, int64_t length, uint64_t hash) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity == 0 ? 4096 : list->capacity * 2;
    uint8_t *grown = realloc(list->entries, capacity * ENTRY);
    if (grown == NULL) return false;
    list->entries = grown;
    list->capacity = capacity;
  }
  uint8_t *at = list->entries + list->count++ * ENTRY;
  for (int i = 0; i < 4; i++) at[i] = (uint8_t)((uint64_t)length >> (24 - 8 * i));
  for (int i = 0; i < 8; i++) at[4 + i] = (uint8_t)(hash >> (56 - 8 * i));
  return true;
}

static bool add_entries(chunk_list *list, const uint8_t *entries, size_t count) {
  if (count == 0) return true;
  if (list->count + count > list->capacity) {
    size_t capacity = list->capacity == 0 ? 4096 : list->capacity;
    while (capacity < list->count + count) capacity *= 2;
    uint8_t *grown = realloc(list->entries, capacity * ENTRY);
    if (grown == NULL) return false;
    list->entries = grown;
    list->capacity = capacity;
  }
  memcpy(list->entries + list->count * ENTRY, entries, count * ENTRY);
  list->count += count;
  return true;
}

static int64_t entry_length(const chunk_list *list, size_t index) {
  const uint8_t *at = list->entries + index * ENTRY;
  return ((int64_t)at[0] << 24) | ((int64_t)at[1] << 16) | ((int64_t)at[2] << 8) | at[3];
}

/*
 * A file read a window at a time from a chunk start: the loop of chunksOf in
 * src/fs/chunking.ts. The window holds file[at, at + filled); the next chunk starts at
 * at + start.
 */
typedef struct {
  const chunks_job *job;
  uint8_t *buffer;
  size_t length;
  int64_t size, at, filled, start;
} reader;

static bool reader_open(reader *r, const chunks_job *job, int64_t from) {
  *r = (reader){.job = job, .length = (size_t)(WINDOW > 2 * job->max ? WINDOW : 2 * job->max), .size = job->size, .at = from};
  r->buffer = take_window(&r->length);
  return r->buffer != NULL;
}

static void reader_close(reader *r) {
  if (r->buffer != NULL) give_window(r->buffer, r->length);
  r->buffer = NULL;
}

static int64_t reader_position(const reader *r) {
  return r->at + r->start;
}

/* The next chunk: 1 (its length and hash set), 0 at the end of the file, -1 on an error (errno). */
static int next_chunk(reader *r, int64_t *length, uint64_t *hash) {
  const chunks_job *job = r->job;
  for (;;) {
    const int64_t read_to = r->at + r->filled;
    if (read_to < r->size && r->filled - r->start < job->max) {
      if (r->start > 0) {
        memmove(r->buffer, r->buffer + r->start, (size_t)(r->filled - r->start));
        r->filled -= r->start;
        r->at += r->start;
        r->start = 0;
      }
      int64_t want = (int64_t)r->length - r->filled;
      if (want > r->size - read_to) want = r->size - read_to;
      const ssize_t got = pread(job->fd, r->buffer + r->filled, (size_t)want, (off_t)read_to);
      if (got < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (got == 0) r->size = read_to; /* shorter than said */
      r->filled += got;
      continue;
    }
    if (r->start >= r->filled) return 0;
    const int64_t end = cut_point(r->buffer, r->start, r->filled, job->min, job->avg, job->max, job->mask_small, job->mask_large, r->at + r->filled >= r->size);
    *length = end - r->start;
    *hash = XXH3_64bits(r->buffer + r->start, (size_t)*length);
    r->start = end;
    return 1;
  }
}

/*
 * Cuts from where `r` is until the next chunk would start at `stop` or later, the file ends, or
 * the list holds more than the job's limit (the caller then says so).
 */
static int cut_until(reader *r, chunk_list *list, int64_t stop) {
  int64_t length;
  uint64_t hash;
  while (reader_position(r) < stop && (int64_t)list->count <= r->job->limit) {
    const int got = next_chunk(r, &length, &hash);
    if (got <= 0) return got < 0 ? errno : 0;
    if (!add_entry(list, length, hash)) return ENOMEM;
  }
  return 0;
}

/* Files from this size on are cut by two threads, each from one half (when there are two cores). */
#define SPLIT_MIN (64 << 20)

typedef struct {
  chunks_job *job;
  chunk_list list;
  int64_t from;
  int error;
} half;

static void *cut_second_half(void *data) {
  half *h = data;
  reader r;
  if (!reader_open(&r, h->job, h->from)) {
    h->error = ENOMEM;
    return NULL;
  }
  h->error = cut_until(&r, &h->list, INT64_MAX);
  reader_close(&r);
  return NULL;
}

/*
 * On a thread of the pool. A large file is cut in two halves at once: the second from its
 * middle as if a chunk started there, the first from 0 past the middle until one of its
 * boundaries is one of the second's. A boundary depends only on the one before it, so from
 * that one on both cut alike, and the result is the file cut from 0 alone (when none meets,
 * as in a long run of one octet cut at the largest size, the first goes on to the end).
 */
static void chunks_execute(napi_env env, void *data) {
  (void)env;
  chunks_job *job = data;
  half second = {.job = job, .from = job->size / 2};
  pthread_t thread;
  const bool split = job->size >= SPLIT_MIN && sysconf(_SC_NPROCESSORS_ONLN) >= 2 && pthread_create(&thread, NULL, cut_second_half, &second) == 0;
  reader r;
  if (!reader_open(&r, job, 0)) job->error = ENOMEM;
  else job->error = cut_until(&r, &job->list, split ? second.from : INT64_MAX);
  if (split) {
    pthread_join(thread, NULL);
    if (job->error == 0) job->error = second.error;
    int64_t boundary = second.from;
    size_t index = 0;
    int64_t length;
    uint64_t hash;
    while (job->error == 0 && (int64_t)job->list.count <= job->limit) {
      const int64_t position = reader_position(&r);
      while (boundary < position && index < second.list.count) boundary += entry_length(&second.list, index++);
      if (boundary == position && position < r.size) {
        /* In step: the second half's chunks from here on are the file's. */
        if (!add_entries(&job->list, second.list.entries + index * ENTRY, second.list.count - index)) job->error = ENOMEM;
        break;
      }
      const int got = next_chunk(&r, &length, &hash);
      if (got < 0) job->error = errno;
      if (got <= 0) break;
      if (!add_entry(&job->list, length, hash)) job->error = ENOMEM;
    }
    free(second.list.entries);
  }
  reader_close(&r);
  if (job->error == 0 && (int64_t)job->list.count > job->limit) job->over = true;
}

static void chunks_complete(napi_env env, napi_status status, void *data) {
  chunks_job *job = data;
  napi_value result;
  if (status != napi_ok || job->error != 0) {
    napi_value code, message;
    const int error = status != napi_ok ? ECANCELED : job->error;
    napi_create_string_utf8(env, error == ENOMEM ? "ENOMEM" : error == EBADF ? "EBADF" : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  } else {
    if (job->over) napi_get_undefined(env, &result);
    else napi_create_buffer_copy(env, job->list.count * ENTRY, job->list.count == 0 ? (const void *)"" : job->list.entries, NULL, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free(job->list.entries);
  free(job);
}

static napi_value chunks_of_file(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) return fail(env, "EINVAL", "chunksOfFile: 8 arguments");
  if (!gear_set) return fail(env, "EINVAL", "chunksOfFile: setGear first");
  int64_t fd, size, min, avg, max, small, large, limit;
  if (!number(env, argv[0], &fd) || !number(env, argv[1], &size) || !number(env, argv[2], &min) || !number(env, argv[3], &avg) || !number(env, argv[4], &max) ||
      !number(env, argv[5], &small) || !number(env, argv[6], &large) || !number(env, argv[7], &limit))
    return fail(env, "EINVAL", "chunksOfFile: numbers");
  if (fd < 0 || size < 0 || min < 0 || avg <= min || max < avg || max > (1 << 28)) return fail(env, "ERANGE", "chunksOfFile: out of range");
  chunks_job *job = calloc(1, sizeof *job);
  if (job == NULL) return fail(env, "ENOMEM", "chunksOfFile: out of memory");
  *job = (chunks_job){.fd = (int)fd, .size = size, .min = min, .avg = avg, .max = max, .limit = limit, .mask_small = (uint32_t)small, .mask_large = (uint32_t)large};
  napi_value promise, name;
  napi_create_string_utf8(env, "fmq:chunksOfFile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, name, chunks_execute, chunks_complete, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    free(job);
    return fail(env, "EINVAL", "chunksOfFile: cannot queue");
  }
  return promise;
}
#endif

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"setGear", NULL, set_gear, NULL, NULL, NULL, napi_default, NULL},
      {"cut", NULL, cut, NULL, NULL, NULL, napi_default, NULL},
#ifdef HAVE_XXHASH
      {"chunksOfFile", NULL, chunks_of_file, NULL, NULL, NULL, napi_default, NULL},
#endif
  };
  napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods);
  return exports;
}
