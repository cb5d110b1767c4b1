#include "proto/bridge_message.h"
#include "proto/bounded_append.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace inkwire::proto {
namespace {

// ---- base64 --------------------------------------------------------------------------------------
// Our own rather than Beast's: boost::beast::detail is not a public API, and the bridge needs the
// strict (canonical) decode that no Boost base64 offers.

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i)
    table[static_cast<std::uint8_t>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}
constexpr std::array<std::int8_t, 256> kDecode = make_decode_table();

std::size_t base64_size(std::size_t n) { return (n + 2) / 3 * 4; }

void append_base64(std::string& out, std::span<const std::uint8_t> in) {
  const std::size_t start = out.size();
  out.resize(start + base64_size(in.size()));
  char* o = out.data() + start;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  const std::size_t rest = in.size() - i;
  if (rest == 0) return;
  std::uint32_t v = std::uint32_t{in[i]} << 16;
  if (rest == 2) v |= std::uint32_t{in[i + 1]} << 8;
  *o++ = kAlphabet[(v >> 18) & 63];
  *o++ = kAlphabet[(v >> 12) & 63];
  *o++ = rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
  *o++ = '=';
}

int sextet(char c) { return kDecode[static_cast<std::uint8_t>(c)]; }

// ---- JSON writing --------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the current run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\f': out.push_back('f'); break;
      case '\n': out.push_back('n'); break;
      case '\r': out.push_back('r'); break;
      case '\t': out.push_back('t'); break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s, run);
  out.push_back('"');
}

// Reserves the 4-byte prefix; finish_prefix fills it in once the JSON is written.
std::size_t begin_prefix(std::string& out) {
  const std::size_t at = out.size();
  out.append(4, '\0');
  return at;
}

void finish_prefix(std::string& out, std::size_t at) {
  const auto n = static_cast<std::uint32_t>(out.size() - at - 4);
  out[at] = static_cast<char>(n >> 24);
  out[at + 1] = static_cast<char>(n >> 16);
  out[at + 2] = static_cast<char>(n >> 8);
  out[at + 3] = static_cast<char>(n);
}

// ---- JSON reading --------------------------------------------------------------------------------

BridgeItem skip(BridgeSkipReason reason) { return BridgeSkipped{reason}; }

// A field the agents may leave out; null counts as left out.
const boost::json::value* field(const boost::json::object& obj, std::string_view key) {
  const boost::json::value* v = obj.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

// A string field: its value, "" when absent, nullopt when it has another type.
std::optional<std::string_view> string_field(const boost::json::object& obj, std::string_view key) {
  const boost::json::value* v = field(obj, key);
  if (v == nullptr) return std::string_view{};
  if (const boost::json::string* s = v->if_string()) return std::string_view{*s};
  return std::nullopt;
}

std::optional<int> close_code_field(const boost::json::object& obj) {
  const boost::json::value* v = field(obj, "code");
  if (v == nullptr) return 1000;
  if (const std::int64_t* i = v->if_int64(); i != nullptr && *i >= 0 && *i <= 0xFFFF) return static_cast<int>(*i);
  if (const std::uint64_t* u = v->if_uint64(); u != nullptr && *u <= 0xFFFF) return static_cast<int>(*u);
  return std::nullopt;
}

BridgeItem parse_item(std::string_view json) {
  // Most messages are small: parse them without touching the heap.
  unsigned char scratch[4096];
  boost::json::monotonic_resource arena(scratch, sizeof scratch);
  boost::json::error_code ec;
  // Default options: strict JSON (no comments, no trailing commas) and valid UTF-8 only.
  const boost::json::value doc = boost::json::parse(json, ec, &arena);
  if (ec) return skip(BridgeSkipReason::malformed_json);
  const boost::json::object* obj = doc.if_object();
  if (obj == nullptr) return skip(BridgeSkipReason::not_an_object);

  const boost::json::value* type_value = obj->if_contains("type");
  const boost::json::string* type = type_value != nullptr ? type_value->if_string() : nullptr;
  if (type == nullptr) return skip(BridgeSkipReason::unknown_type);

  if (*type == "text") {
    const auto data = string_field(*obj, "data");
    if (!data) return skip(BridgeSkipReason::bad_field);
    return BridgeMessage::text(std::string(*data));
  }
  if (*type == "binary") {
    const auto data = string_field(*obj, "data");
    if (!data) return skip(BridgeSkipReason::bad_field);
    auto bytes = bridge_base64_decode(*data);
    if (!bytes) return skip(BridgeSkipReason::bad_base64);
    return BridgeMessage::binary(std::move(*bytes));
  }
  if (*type == "close") {
    const auto code = close_code_field(*obj);
    const auto reason = string_field(*obj, "reason");
    if (!code || !reason) return skip(BridgeSkipReason::bad_field);
    return BridgeMessage::close(*code, std::string(*reason));
  }
  return skip(BridgeSkipReason::unknown_type);
}

}  // namespace

// ---- base64 --------------------------------------------------------------------------------------

std::string bridge_base64_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  append_base64(out, bytes);
  return out;
}

std::optional<std::string> bridge_base64_decode(std::string_view text) {
  const std::size_t n = text.size();
  if (n % 4 != 0) return std::nullopt;
  if (n == 0) return std::string{};
  std::size_t pad = 0;
  if (text[n - 1] == '=') pad = text[n - 2] == '=' ? 2 : 1;

  std::string out;
  out.resize(n / 4 * 3 - pad);
  char* o = out.data();
  // Every group but the last has four alphabet characters ('=' decodes as -1 like any stranger).
  for (std::size_t i = 0; i + 4 < n; i += 4) {
    const int a = sextet(text[i]), b = sextet(text[i + 1]), c = sextet(text[i + 2]), d = sextet(text[i + 3]);
    if ((a | b | c | d) < 0) return std::nullopt;
    const auto v = static_cast<std::uint32_t>((a << 18) | (b << 12) | (c << 6) | d);
    *o++ = static_cast<char>(v >> 16);
    *o++ = static_cast<char>(v >> 8);
    *o++ = static_cast<char>(v);
  }
  const std::size_t i = n - 4;
  const int a = sextet(text[i]), b = sextet(text[i + 1]);
  const int c = pad == 2 ? 0 : sextet(text[i + 2]);
  const int d = pad >= 1 ? 0 : sextet(text[i + 3]);
  if ((a | b | c | d) < 0) return std::nullopt;
  // Canonical form only: the bits that padding leaves unused must be zero, or "QR==" and "QQ=="
  // would both decode to "A".
  if (pad == 2 && (b & 0x0F) != 0) return std::nullopt;
  if (pad == 1 && (c & 0x03) != 0) return std::nullopt;
  const auto v = static_cast<std::uint32_t>((a << 18) | (b << 12) | (c << 6) | d);
  *o++ = static_cast<char>(v >> 16);
  if (pad < 2) *o++ = static_cast<char>(v >> 8);
  if (pad < 1) *o++ = static_cast<char>(v);
  return out;
}

// ---- Encoding ------------------------------------------------------------------------------------

void encode_bridge_text(std::string& out, std::string_view text) {
  const std::size_t at = begin_prefix(out);
  out.append(R"({"type":"text","data":)");
  append_json_string(out, text);
  out.push_back('}');
  finish_prefix(out, at);
}

void encode_bridge_binary(std::string& out, std::span<const std::uint8_t> bytes) {
  static constexpr std::string_view kHead = R"({"type":"binary","data":")";
  out.reserve(out.size() + 4 + kHead.size() + base64_size(bytes.size()) + 2);
  const std::size_t at = begin_prefix(out);
  out.append(kHead);
  append_base64(out, bytes);
  out.append("\"}");
  finish_prefix(out, at);
}

void encode_bridge_close(std::string& out, int code, std::string_view reason) {
  const std::size_t at = begin_prefix(out);
  out.append(R"({"type":"close","code":)");
  char digits[16];
  const auto r = std::to_chars(digits, digits + sizeof digits, code);
  out.append(digits, r.ptr);
  out.append(R"(,"reason":)");
  append_json_string(out, reason);
  out.push_back('}');
  finish_prefix(out, at);
}

void encode_bridge_message(std::string& out, const BridgeMessage& message) {
  switch (message.type) {
    case BridgeMessage::Type::text:
      encode_bridge_text(out, message.data);
      return;
    case BridgeMessage::Type::binary:
      encode_bridge_binary(
          out, {reinterpret_cast<const std::uint8_t*>(message.data.data()), message.data.size()});
      return;
    case BridgeMessage::Type::close:
      encode_bridge_close(out, message.close_code, message.close_reason);
      return;
  }
}

// ---- Decoding ------------------------------------------------------------------------------------

std::string_view to_string(BridgeSkipReason reason) {
  switch (reason) {
    case BridgeSkipReason::malformed_json: return "malformed JSON";
    case BridgeSkipReason::not_an_object: return "not a JSON object";
    case BridgeSkipReason::unknown_type: return "unknown type";
    case BridgeSkipReason::bad_field: return "field of the wrong type";
    case BridgeSkipReason::bad_base64: return "bad base64";
  }
  return "unknown reason";
}

std::string_view to_string(BridgeMessageError error) {
  switch (error) {
    case BridgeMessageError::message_too_large: return "bridge message too large";
  }
  return "unknown error";
}

BridgeMessageDecoder::BridgeMessageDecoder(BridgeMessageLimits limits) : limits_(limits) {
  // capacity() must not overflow, and a length prefix cannot announce more than 2^32 - 1 anyway.
  limits_.max_message_bytes = std::min<std::size_t>(limits_.max_message_bytes, UINT32_MAX);
}

std::size_t BridgeMessageDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) return bytes.size();
  return bounded_append(buffer_, read_, capacity(), bytes);
}

Expected<std::optional<BridgeItem>, BridgeMessageError> BridgeMessageDecoder::next() {
  using Result = std::optional<BridgeItem>;
  if (failed_) return unexpected(BridgeMessageError::message_too_large);
  const std::size_t avail = buffered();
  if (avail < 4) return Result{};
  const std::uint8_t* p = buffer_.data() + read_;
  const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
  if (n > limits_.max_message_bytes) {
    failed_ = true;
    std::vector<std::uint8_t>().swap(buffer_);
    read_ = 0;
    return unexpected(BridgeMessageError::message_too_large);
  }
  if (avail < 4 + n) return Result{};
  const std::string_view json(reinterpret_cast<const char*>(p) + 4, n);
  read_ += 4 + n;
  return Result{parse_item(json)};
}

}  // namespace inkwire::proto
