#include "proto/response_post.h"

#include "proto/protocol_constants.h"
#include "proto/set_cookie.h"

namespace inkwire::proto {

namespace {

// Fields the third party must never get from a post, beyond the response hop-by-hop set:
// proxy-connection is connection-specific in HTTP/2 (a browser fails the stream), and the body's
// framing is the edge's to compute.
bool is_dropped_response_header(std::string_view lname) {
  return is_hop_by_hop_response_header(lname) || lname == "proxy-connection" || lname == "content-length" ||
         lname == "transfer-encoding";
}

}  // namespace

std::optional<int> parse_post_status(std::string_view text) {
  if (text.size() != 3) return std::nullopt;
  int status = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    status = status * 10 + (c - '0');
  }
  if (status < 100 || status > 599) return std::nullopt;
  return status;
}

Expected<ResponsePost, PostError> parse_response_post(std::span<const HeaderField> post_headers) {
  ResponsePost post;
  bool have_status = false;
  bool have_top_reason = false;
  std::string wrapped_reason;  // inkbox-h-inkbox-reason, used only without a top-level one

  for (const HeaderField& field : post_headers) {
    if (iequals_ascii(field.name, meta_header::kStatus)) {
      if (have_status) return unexpected(PostError{PostError::Code::repeated_status, 400, 502, "inkbox-status repeated"});
      const auto status = parse_post_status(field.value);
      if (!status) {
        return unexpected(PostError{PostError::Code::bad_status, 400, 502, "inkbox-status is not an integer from 100 to 599"});
      }
      post.status = *status;
      have_status = true;
      continue;
    }
    if (iequals_ascii(field.name, meta_header::kRequestId)) {
      if (post.request_id.empty()) post.request_id = field.value;
      continue;
    }
    if (iequals_ascii(field.name, meta_header::kReason)) {
      // An empty or unloggable top-level reason does not hide the wrapped one.
      const std::string_view reason = trim_ows(field.value);
      if (!have_top_reason && !reason.empty() && is_valid_field_value(reason, false)) {
        post.reason = std::string(reason);
        have_top_reason = true;
      }
      continue;
    }
    if (!istarts_with_ascii(field.name, kInkboxForwardedHeaderPrefix)) continue;

    const std::string name = lowercase_ascii(std::string_view(field.name).substr(kInkboxForwardedHeaderPrefix.size()));
    const std::string_view value = trim_ows(field.value);
    if (!is_token(name)) {
      ++post.dropped_invalid;
      continue;
    }
    if (name.starts_with(kInkboxNamespacePrefix)) {
      // §8 A9: inkbox-* is agent metadata, never the third party's business; keep only the reason.
      if (name == meta_header::kReason && wrapped_reason.empty() && is_valid_field_value(value, false)) {
        wrapped_reason = std::string(value);
      }
      continue;
    }
    if (is_dropped_response_header(name)) continue;
    // Values toward the third party may be any bytes but control characters; invalid UTF-8 is
    // legal HTTP (obs-text) and passed on.
    if (!is_valid_field_value(value, /*require_utf8=*/false)) {
      ++post.dropped_invalid;
      continue;
    }
    if (name == "set-cookie") {
      for (std::string& cookie : split_set_cookie(value)) post.headers.push_back({name, std::move(cookie)});
      continue;
    }
    post.headers.push_back({name, std::string(value)});
  }

  if (!have_status) return unexpected(PostError{PostError::Code::missing_status, 400, 502, "inkbox-status missing"});
  if (!have_top_reason) post.reason = std::move(wrapped_reason);
  return post;
}

bool response_has_body(std::string_view request_method, int status) {
  if (request_method == "HEAD") return false;
  return !(status < 200 || status == 204 || status == 304);
}

}  // namespace inkwire::proto
