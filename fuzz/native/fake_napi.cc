// See fake_napi.h. Values live in a deque until the next Reset (one input).
#include "fake_napi.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <deque>

struct napi_value__ {
  napi_valuetype type = napi_undefined;
  double number = 0;
  bool boolean = false;
  std::string text;   // strings; errors' message
  std::string error;  // errors' class
  bool is_typed = false;
  napi_typedarray_type typed = napi_uint8_array;
  void* data = nullptr;
  size_t length = 0;
};

struct napi_callback_info__ {
  std::vector<napi_value> args;
};

struct napi_ref__ {
  napi_value value;
};

namespace {

std::deque<napi_value__> values;
std::deque<napi_callback_info__> calls;
std::deque<napi_ref__> refs;
fake::Thrown thrown;
napi_value thrown_value = nullptr;
napi_env__* const kEnv = reinterpret_cast<napi_env__*>(0x1000);

napi_value Make(napi_valuetype type) {
  values.emplace_back();
  values.back().type = type;
  return &values.back();
}

napi_value MakeError(const char* kind, napi_value msg, napi_value* result) {
  *result = Make(napi_object);
  (*result)->error = kind;
  (*result)->text = msg != nullptr ? msg->text : "";
  return *result;
}

}  // namespace

namespace fake {

napi_env Env() { return kEnv; }

void Reset() {
  values.clear();
  calls.clear();
  refs.clear();
  thrown = {};
  thrown_value = nullptr;
}

const Thrown& Exception() { return thrown; }
napi_value Undefined() { return Make(napi_undefined); }

napi_value Number(double v) {
  napi_value r = Make(napi_number);
  r->number = v;
  return r;
}

napi_value Boolean(bool v) {
  napi_value r = Make(napi_boolean);
  r->boolean = v;
  return r;
}

napi_value String(const std::string& s) {
  napi_value r = Make(napi_string);
  r->text = s;
  return r;
}

napi_value TypedArray(napi_typedarray_type type, void* data, size_t length) {
  napi_value r = Make(napi_object);
  r->is_typed = true;
  r->typed = type;
  r->data = data;
  r->length = length;
  return r;
}

napi_callback_info Call(const std::vector<napi_value>& args) {
  calls.push_back({args});
  return &calls.back();
}

}  // namespace fake

extern "C" {

napi_status napi_get_cb_info(napi_env, napi_callback_info info, size_t* argc, napi_value* argv,
                             napi_value* this_arg, void** data) {
  if (argv != nullptr) {
    for (size_t i = 0; i < *argc; i++) {
      argv[i] = i < info->args.size() ? info->args[i] : fake::Undefined();
    }
  }
  if (argc != nullptr) *argc = info->args.size();
  if (this_arg != nullptr) *this_arg = fake::Undefined();
  if (data != nullptr) *data = nullptr;
  return napi_ok;
}

napi_status napi_get_undefined(napi_env, napi_value* result) {
  *result = fake::Undefined();
  return napi_ok;
}

napi_status napi_typeof(napi_env, napi_value v, napi_valuetype* result) {
  *result = v->type;
  return napi_ok;
}

napi_status napi_get_value_double(napi_env, napi_value v, double* result) {
  if (v->type != napi_number) return napi_number_expected;
  *result = v->number;
  return napi_ok;
}

napi_status napi_get_boolean(napi_env, bool v, napi_value* result) {
  *result = fake::Boolean(v);
  return napi_ok;
}

napi_status napi_get_value_bool(napi_env, napi_value v, bool* result) {
  if (v->type != napi_boolean) return napi_boolean_expected;
  *result = v->boolean;
  return napi_ok;
}

napi_status napi_is_typedarray(napi_env, napi_value v, bool* result) {
  *result = v->is_typed;
  return napi_ok;
}

napi_status napi_get_typedarray_info(napi_env, napi_value v, napi_typedarray_type* type,
                                     size_t* length, void** data, napi_value* arraybuffer,
                                     size_t* byte_offset) {
  if (!v->is_typed) return napi_invalid_arg;
  if (type != nullptr) *type = v->typed;
  if (length != nullptr) *length = v->length;
  if (data != nullptr) *data = v->data;
  if (arraybuffer != nullptr) *arraybuffer = fake::Undefined();
  if (byte_offset != nullptr) *byte_offset = 0;
  return napi_ok;
}

napi_status napi_create_double(napi_env, double v, napi_value* result) {
  *result = fake::Number(v);
  return napi_ok;
}

napi_status napi_create_string_utf8(napi_env, const char* s, size_t length, napi_value* result) {
  *result = fake::String(length == NAPI_AUTO_LENGTH ? std::string(s) : std::string(s, length));
  return napi_ok;
}

// Numbers print as %.17g, not as JavaScript would: only messages use this.
napi_status napi_coerce_to_string(napi_env, napi_value v, napi_value* result) {
  if (v->type == napi_string) {
    *result = v;
    return napi_ok;
  }
  if (v->type != napi_number) return napi_generic_failure;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v->number);
  *result = fake::String(buf);
  return napi_ok;
}

napi_status napi_get_value_string_utf8(napi_env, napi_value v, char* buf, size_t size,
                                       size_t* result) {
  if (v->type != napi_string) return napi_string_expected;
  if (buf == nullptr) {
    *result = v->text.size();
    return napi_ok;
  }
  const size_t n = size == 0 ? 0 : std::min(size - 1, v->text.size());
  std::memcpy(buf, v->text.data(), n);
  if (size > 0) buf[n] = '\0';
  if (result != nullptr) *result = n;
  return napi_ok;
}

napi_status napi_create_error(napi_env, napi_value, napi_value msg, napi_value* result) {
  MakeError("Error", msg, result);
  return napi_ok;
}

napi_status napi_create_type_error(napi_env, napi_value, napi_value msg, napi_value* result) {
  MakeError("TypeError", msg, result);
  return napi_ok;
}

napi_status napi_create_range_error(napi_env, napi_value, napi_value msg, napi_value* result) {
  MakeError("RangeError", msg, result);
  return napi_ok;
}

napi_status napi_throw(napi_env, napi_value error) {
  if (thrown.pending) return napi_pending_exception;
  thrown.pending = true;
  thrown.kind = error->error;
  thrown.message = error->text;
  thrown_value = error;
  return napi_ok;
}

napi_status napi_is_exception_pending(napi_env, bool* result) {
  *result = thrown.pending;
  return napi_ok;
}

napi_status napi_get_and_clear_last_exception(napi_env, napi_value* result) {
  *result = thrown_value != nullptr ? thrown_value : fake::Undefined();
  thrown = {};
  thrown_value = nullptr;
  return napi_ok;
}

napi_status napi_create_reference(napi_env, napi_value v, uint32_t, napi_ref* result) {
  if (v->type != napi_object) return napi_object_expected;
  refs.push_back({v});
  *result = &refs.back();
  return napi_ok;
}

napi_status napi_delete_reference(napi_env, napi_ref) { return napi_ok; }

napi_status napi_get_reference_value(napi_env, napi_ref ref, napi_value* result) {
  *result = ref->value;
  return napi_ok;
}

napi_status napi_has_property(napi_env, napi_value, napi_value, bool* result) {
  *result = false;  // no error here is a wrapped non-object
  return napi_ok;
}

napi_status napi_open_handle_scope(napi_env, napi_handle_scope* result) {
  *result = nullptr;
  return napi_ok;
}

napi_status napi_close_handle_scope(napi_env, napi_handle_scope) { return napi_ok; }

napi_status napi_get_last_error_info(napi_env, const napi_extended_error_info** result) {
  static const napi_extended_error_info info{"fake N-API: not implemented", nullptr, 0,
                                             napi_generic_failure};
  *result = &info;
  return napi_ok;
}

void napi_fatal_error(const char* location, size_t, const char* message, size_t) {
  std::fprintf(stderr, "napi_fatal_error at %s: %s\n", location ? location : "?",
               message ? message : "?");
  std::abort();
}

// Reached only from the modules' Init and the errno errors' extra fields,
// which no fuzzer calls.
napi_status napi_create_object(napi_env, napi_value*) { return napi_generic_failure; }
napi_status napi_create_array_with_length(napi_env, size_t, napi_value*) {
  return napi_generic_failure;
}
napi_status napi_create_function(napi_env, const char*, size_t, napi_callback, void*,
                                 napi_value*) {
  return napi_generic_failure;
}
napi_status napi_define_properties(napi_env, napi_value, size_t, const napi_property_descriptor*) {
  return napi_generic_failure;
}
napi_status napi_add_finalizer(napi_env, napi_value, void*, node_api_basic_finalize, void*,
                               napi_ref*) {
  return napi_generic_failure;
}
napi_status napi_get_property(napi_env, napi_value, napi_value, napi_value*) {
  return napi_generic_failure;
}
napi_status napi_get_named_property(napi_env, napi_value, const char*, napi_value*) {
  return napi_generic_failure;
}
napi_status napi_set_named_property(napi_env, napi_value, const char*, napi_value) {
  return napi_generic_failure;
}
napi_status napi_set_element(napi_env, napi_value, uint32_t, napi_value) {
  return napi_generic_failure;
}

}  // extern "C"
