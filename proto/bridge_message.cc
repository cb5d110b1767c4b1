#include "proto/bridge_message.h"
#include "proto/bounded_append.h"

#include "common/encoding.h"

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

// ---- JSON writing --------------------------------------------------------------------------------

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

// The bridge's base64 is the project's strict one (common/encoding.h); these names stay for callers.
std::string bridge_base64_encode(std::span<const std::uint8_t> bytes) { return base64_encode(bytes); }

std::optional<std::string> bridge_base64_decode(std::string_view text) { return base64_decode(text); }

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
  out.reserve(out.size() + 4 + kHead.size() + (bytes.size() + 2) / 3 * 4 + 2);
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
