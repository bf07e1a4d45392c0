// The batch calls' argument checks (batch_args.h, napi_args.h) on any
// arguments, through a fake N-API (fake_napi.cc). Input: which head (1 byte:
// even = tunRead/tunWrite's, odd = udpRecv/udpSend's, with addrs), then the
// arguments, each chosen by a byte: its JavaScript type, for typed arrays the
// element type and length and contents, for numbers an integer or any double.
// Checked: a check fails exactly when it threw a TypeError or RangeError, and
// when all pass, every slot (offset + capacity) and packet (offset + length)
// the call would touch lies inside data (touched here, for ASan to see).
#include <cstring>
#include <memory>
#include <vector>

#include "batch_args.h"
#include "check.h"
#include "fake_napi.h"

namespace {

class Input {
 public:
  Input(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t Byte() { return at_ < n_ ? p_[at_++] : 0; }
  uint32_t U32() { return Byte() | Byte() << 8 | Byte() << 16 | uint32_t{Byte()} << 24; }
  double Double() {
    uint64_t bits = U32() | uint64_t{U32()} << 32;
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }

 private:
  const uint8_t* p_;
  size_t n_, at_ = 0;
};

// Backing stores of the typed arrays, freed after the input.
std::vector<std::unique_ptr<uint32_t[]>> stores;

napi_value NumberArg(Input& in) {
  switch (in.Byte() % 6) {
    case 0: return fake::Number(in.Byte());
    case 1: return fake::Number(in.U32());
    case 2: return fake::Number(in.Double());
    case 3: return fake::Undefined();
    case 4: return fake::Boolean(true);
    default: return fake::String("1");
  }
}

// Mostly the wanted type; any other now and then. Elements come from the input.
napi_value ArrayArg(Input& in, napi_typedarray_type want) {
  const uint8_t pick = in.Byte();
  if (pick % 16 == 15) return NumberArg(in);
  const napi_typedarray_type type = pick % 16 < 12 ? want : static_cast<napi_typedarray_type>(pick % 11);
  const size_t length = in.Byte() % 64 + (pick & 0x80 ? in.Byte() * 64u : 0);
  const size_t bytes = length * (want == napi_uint8_array ? 1 : want == napi_float64_array ? 8 : 4);
  // Exactly `bytes` long, so ASan sees any access past it.
  uint32_t* store = static_cast<uint32_t*>(operator new[](bytes + (bytes == 0)));
  stores.emplace_back(store);
  uint8_t* b = reinterpret_cast<uint8_t*>(store);
  if (want == napi_uint32_array) {
    // Offsets and lengths: small values (near the data's length) are the interesting ones.
    for (size_t i = 0; i < length; i++) store[i] = in.Byte() & 0x80 ? in.U32() : in.Byte() * 16u;
  } else {
    for (size_t i = 0; i < bytes; i++) b[i] = in.Byte();
  }
  return fake::TypedArray(type, store, length);
}

volatile uint8_t sink;

// Reads the first and last byte of data[offset, offset + size) (ASan checks them).
void Touch(const tundra::args::View& data, uint32_t offset, uint32_t size) {
  if (size == 0) return;
  sink = data.data[offset];
  sink = data.data[uint64_t{offset} + size - 1];
}

bool Pending() { return fake::Exception().pending; }

// A failed check threw one TypeError or RangeError; a passed one threw nothing.
bool Checked(bool ok) {
  const fake::Thrown& t = fake::Exception();
  FUZZ_REQUIRE(ok != t.pending);
  FUZZ_REQUIRE(ok || t.kind == "TypeError" || t.kind == "RangeError");
  FUZZ_REQUIRE(ok || !t.message.empty());
  return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* p, size_t n) {
  using namespace tundra::args;
  fake::Reset();
  stores.clear();
  Input in(p, n);
  const bool udp = (in.Byte() & 1) != 0;
  const size_t stride = udp ? 44 : 0;
  std::vector<napi_value> argv{NumberArg(in), ArrayArg(in, napi_uint8_array),
                               ArrayArg(in, napi_uint32_array), ArrayArg(in, napi_uint32_array)};
  if (udp) argv.push_back(ArrayArg(in, napi_uint8_array));
  argv.push_back(NumberArg(in));                        // count
  argv.push_back(NumberArg(in));                        // capacity
  argv.push_back(ArrayArg(in, napi_int32_array));       // status
  argv.push_back(ArrayArg(in, napi_float64_array));     // stats
  if (in.Byte() & 1) argv.resize(argv.size() - 1 - in.Byte() % 3);  // trailing ones left out
  const Napi::CallbackInfo info(fake::Env(), fake::Call(argv));
  napi_env env = fake::Env();
  const char* fn = udp ? "udpRecv" : "tunRead";

  Batch b;
  if (!Checked(GetBatch(info, fn, stride, &b))) return 0;
  FUZZ_REQUIRE(b.count <= b.offsets.length && b.count <= b.lengths.length);
  if (udp) FUZZ_REQUIRE(b.count * stride <= b.addrs.length);
  size_t at = udp ? 6 : 5;
  uint32_t capacity = 0;
  if (!Checked(GetUint32(env, info[at++], fn, "capacity", &capacity))) return 0;
  const bool slots = Checked(CheckSlots(env, fn, b, capacity, b.count));
  if (slots) {
    for (size_t i = 0; i < b.count; i++) Touch(b.data, b.Offsets()[i], capacity);
  } else {
    napi_value error;  // the write path's check, from a clean state
    napi_get_and_clear_last_exception(env, &error);
  }
  if (Checked(CheckWrites(env, fn, b, b.count))) {
    for (size_t i = 0; i < b.count; i++) Touch(b.data, b.Offsets()[i], b.Lengths()[i]);
  }
  if (Pending()) return 0;
  View status;
  if (Checked(GetStatus(info, at, fn, b.count, &status)) && status.data != nullptr) {
    FUZZ_REQUIRE(status.length >= b.count);
    if (b.count > 0) sink = status.data[b.count * 4 - 1];
  }
  if (Pending()) return 0;
  double* stats = nullptr;
  if (Checked(GetStats(env, info[at + 1], fn, "stats", 12, &stats)) && stats != nullptr) {
    sink = reinterpret_cast<const uint8_t*>(stats)[12 * 8 - 1];
  }
  return 0;
}
