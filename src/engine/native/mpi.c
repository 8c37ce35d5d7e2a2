/* N-API binding to MPI for data-parallel runs: init, rank/size, in-place sum all-reduce of typed arrays
 * (chunked under 2^31 elements), all-gather and broadcast of byte strings, barrier, abort, finalize.
 * Built only where mpicc exists (scripts/build-native.mjs); it holds no state but MPI's own, does no math,
 * and never calls MPI from more than the main thread (MPI_THREAD_FUNNELED). */
#include <mpi.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((size_t)1 << 30)

static int check(napi_env env, int rc, const char *op) {
  if (rc == MPI_SUCCESS) return 1;
  char msg[MPI_MAX_ERROR_STRING + 64], err[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, err, &n);
  snprintf(msg, sizeof msg, "frugal mpi %s: %s", op, err);
  napi_throw_error(env, "ERR_FRUGAL_MPI", msg);
  return 0;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value init_fn(napi_env env, napi_callback_info info) {
  int provided = 0, rank = 0, size = 1, inited = 0;
  MPI_Initialized(&inited);
  if (!inited && !check(env, MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "init")) return NULL;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char host[MPI_MAX_PROCESSOR_NAME];
  int hlen = 0;
  MPI_Get_processor_name(host, &hlen);
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int llen = 0;
  MPI_Get_library_version(lib, &llen);
  char *nl = strchr(lib, ',');
  if (nl) *nl = 0;
  napi_value o, h, l;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "rank", num(env, rank));
  napi_set_named_property(env, o, "size", num(env, size));
  napi_create_string_utf8(env, host, hlen, &h);
  napi_set_named_property(env, o, "host", h);
  napi_create_string_utf8(env, lib, NAPI_AUTO_LENGTH, &l);
  napi_set_named_property(env, o, "library", l);
  return o;
}

/* allreduceSum(a: Float32Array | Float64Array): sums a over all ranks, in place */
static napi_value allreduce_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is) != napi_ok || !is) {
    napi_throw_type_error(env, "ERR_FRUGAL_TYPE", "frugal mpi allreduceSum: argument must be a Float32Array or Float64Array");
    return NULL;
  }
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_get_typedarray_info(env, argv[0], &t, &len, &data, NULL, NULL);
  if (t != napi_float32_array && t != napi_float64_array) {
    napi_throw_type_error(env, "ERR_FRUGAL_TYPE", "frugal mpi allreduceSum: argument must be a Float32Array or Float64Array");
    return NULL;
  }
  MPI_Datatype dt = t == napi_float32_array ? MPI_FLOAT : MPI_DOUBLE;
  size_t width = t == napi_float32_array ? 4 : 8;
  for (size_t off = 0; off < len; off += CHUNK) {
    size_t n = len - off < CHUNK ? len - off : CHUNK;
    if (!check(env, MPI_Allreduce(MPI_IN_PLACE, (char *)data + off * width, (int)n, dt, MPI_SUM, MPI_COMM_WORLD),
               "allreduceSum"))
      return NULL;
  }
  return NULL;
}

static int bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *op) {
  bool is = false;
  napi_typedarray_type t;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &t, len, (void **)data, NULL, NULL) != napi_ok || t != napi_uint8_array) {
    char msg[128];
    snprintf(msg, sizeof msg, "frugal mpi %s: argument must be a Uint8Array", op);
    napi_throw_type_error(env, "ERR_FRUGAL_TYPE", msg);
    return 0;
  }
  if (*len > (size_t)INT32_MAX) {
    napi_throw_range_error(env, "ERR_FRUGAL_SHAPE", "frugal mpi: a byte string over 2 GiB cannot be sent in one call");
    return 0;
  }
  return 1;
}

/* allgather(bytes: Uint8Array): Uint8Array[] — every rank's bytes, in rank order */
static napi_value allgather_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *mine;
  size_t len;
  if (argc < 1 || !bytes_arg(env, argv[0], &mine, &len, "allgather")) return NULL;
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int *counts = calloc(size, sizeof(int)), *displs = calloc(size, sizeof(int)), n = (int)len;
  if (!check(env, MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD), "allgather")) goto fail;
  size_t total = 0;
  for (int r = 0; r < size; r++) {
    displs[r] = (int)total;
    total += (size_t)counts[r];
  }
  if (total > (size_t)INT32_MAX) {
    napi_throw_range_error(env, "ERR_FRUGAL_SHAPE", "frugal mpi allgather: over 2 GiB gathered in one call");
    goto fail;
  }
  uint8_t *all = malloc(total ? total : 1);
  if (!check(env, MPI_Allgatherv(mine, n, MPI_BYTE, all, counts, displs, MPI_BYTE, MPI_COMM_WORLD), "allgather")) {
    free(all);
    goto fail;
  }
  napi_value out;
  napi_create_array_with_length(env, size, &out);
  for (int r = 0; r < size; r++) {
    napi_value buf, arr;
    void *p;
    napi_create_arraybuffer(env, counts[r], &p, &buf);
    memcpy(p, all + displs[r], counts[r]);
    napi_create_typedarray(env, napi_uint8_array, counts[r], buf, 0, &arr);
    napi_set_element(env, out, r, arr);
  }
  free(all);
  free(counts);
  free(displs);
  return out;
fail:
  free(counts);
  free(displs);
  return NULL;
}

static napi_value barrier_fn(napi_env env, napi_callback_info info) {
  check(env, MPI_Barrier(MPI_COMM_WORLD), "barrier");
  return NULL;
}

static napi_value abort_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_int32(env, argv[0], &code);
  MPI_Abort(MPI_COMM_WORLD, code);
  return NULL;
}

static napi_value finalize_fn(napi_env env, napi_callback_info info) {
  int inited = 0, done = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&done);
  if (inited && !done) MPI_Finalize();
  return NULL;
}

#define FN(name, f) {name, 0, f, 0, 0, 0, napi_default, 0}
static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      FN("init", init_fn),       FN("allreduceSum", allreduce_fn), FN("allgather", allgather_fn),
      FN("barrier", barrier_fn), FN("abort", abort_fn),            FN("finalize", finalize_fn),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}
NAPI_MODULE(frugal_mpi, init)
