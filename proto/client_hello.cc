#include "proto/client_hello.h"

#include <algorithm>
#include <utility>

namespace inkwire::proto {
namespace {

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::size_t kRecordHeaderBytes = 5;
constexpr std::size_t kMaxRecordPayload = 16384;  // RFC 8446 §5.1: 2^14; more is record_overflow
constexpr std::uint32_t kHandshakeClientHello = 1;
constexpr std::size_t kRandomBytes = 32;
constexpr std::uint32_t kMaxSessionIdBytes = 32;
constexpr std::uint32_t kExtServerName = 0;
constexpr std::uint32_t kExtAlpn = 16;
constexpr std::uint32_t kExtSupportedVersions = 43;
constexpr std::uint32_t kNameTypeHostName = 0;
constexpr std::size_t kMaxHostNameBytes = 253;  // DNS limit, without the trailing dot
constexpr std::size_t kMaxLabelBytes = 63;

enum class Step { ok, need_more, not_tls, malformed, too_large };

// The handshake byte stream carried by consecutive handshake records, read in place: record headers
// are validated as they are crossed, so a ClientHello split over several records needs no
// reassembly buffer. Positions are offsets into the raw input.
class HandshakeReader {
 public:
  HandshakeReader(std::span<const std::uint8_t> in, std::size_t max_bytes) : in_(in), max_(max_bytes) {}

  // Once the ClientHello's length is known, need_more/too_large can reason about its end rather
  // than only about the next field.
  void set_message_length(std::size_t total_handshake_bytes) { message_end_ = total_handshake_bytes; }

  // Passes the next n handshake bytes to `sink` in contiguous chunks.
  template <class Sink>
  Step consume(std::size_t n, Sink&& sink) {
    while (n > 0) {
      want_ = n;
      if (const Step s = position(); s != Step::ok) return s;
      const std::size_t chunk = std::min({n, record_end_ - pos_, in_.size() - pos_});
      sink(in_.subspan(pos_, chunk));
      pos_ += chunk;
      consumed_ += chunk;
      n -= chunk;
    }
    return Step::ok;
  }

  Step skip(std::size_t n) {
    return consume(n, [](std::span<const std::uint8_t>) {});
  }

  Step read_uint(std::size_t n, std::uint32_t& out) {
    out = 0;
    return consume(n, [&out](std::span<const std::uint8_t> chunk) {
      for (const std::uint8_t b : chunk) out = (out << 8) | b;
    });
  }

  std::size_t bytes_needed() const { return needed_; }

 private:
  // Handshake bytes still wanted from the current position.
  std::size_t remaining() const { return message_end_ ? std::max(*message_end_ - consumed_, want_) : want_; }

  // Makes pos_ point at an available handshake byte, crossing into the next record if needed.
  // too_large is decided from a lower bound on where the ClientHello ends, before availability, so
  // it comes as early as the lengths allow and never depends on how many bytes have arrived.
  Step position() {
    for (;;) {
      if (pos_ < record_end_) {
        const std::size_t in_record = record_end_ - pos_;
        const std::size_t r = remaining();
        // Continuing past this record costs at least one more record header.
        const std::size_t least = r <= in_record ? pos_ + r : record_end_ + kRecordHeaderBytes + (r - in_record);
        if (least > max_) return Step::too_large;
        if (pos_ < in_.size()) return Step::ok;
        needed_ = least;
        return Step::need_more;
      }
      const std::size_t header = record_end_;
      if (header == 0) {
        // The first byte alone tells a TLS handshake from anything else (plain HTTP, SSLv2-style
        // hellos), so a wrong-port client is recognised without waiting for more.
        if (in_.empty()) {
          // Not too_large yet even for a tiny bound: the first byte must still decide not_tls.
          needed_ = std::min(kRecordHeaderBytes + remaining(), std::max<std::size_t>(max_, 1));
          return Step::need_more;
        }
        if (in_[0] != kContentHandshake) return Step::not_tls;
      }
      const std::size_t least = header + kRecordHeaderBytes + remaining();
      if (least > max_) return Step::too_large;
      if (in_.size() < header + kRecordHeaderBytes) {
        needed_ = least;
        return Step::need_more;
      }
      const std::uint8_t* p = in_.data() + header;
      // RFC 8446 §5.1: handshake messages may be fragmented but not interleaved with other types.
      if (p[0] != kContentHandshake) return Step::malformed;
      if (p[1] != 3 || p[2] < 1 || p[2] > 4) return Step::malformed;
      const std::size_t length = (std::size_t{p[3]} << 8) | p[4];
      // Zero-length handshake fragments are forbidden (RFC 8446 §5.1), and allowing them would let
      // a peer make us walk headers without progress.
      if (length == 0 || length > kMaxRecordPayload) return Step::malformed;
      pos_ = header + kRecordHeaderBytes;
      record_end_ = pos_ + length;
    }
  }

  std::span<const std::uint8_t> in_;
  std::size_t max_;
  std::size_t pos_ = 0;         // next handshake byte
  std::size_t record_end_ = 0;  // end of the current record's payload (0: no record yet)
  std::size_t consumed_ = 0;    // handshake bytes consumed
  std::size_t want_ = 0;        // bytes the current consume() still wants
  std::optional<std::size_t> message_end_;
  std::size_t needed_ = 0;
};

bool allowed_host_byte(std::uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

std::uint8_t to_lower(std::uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c - 'A' + 'a') : c; }

// The name is already lowercased and made of allowed bytes. The edge looks tunnels up by exact
// SNI, so anything that is not a plain DNS name is refused here rather than left to fail a lookup.
bool normalise_host_name(std::string& name) {
  if (!name.empty() && name.back() == '.') name.pop_back();  // "example.com." is "example.com"
  if (name.empty() || name.size() > kMaxHostNameBytes) return false;
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') continue;
    const std::size_t label = i - label_start;
    if (label == 0 || label > kMaxLabelBytes) return false;  // ".a", "a..b", 64-byte labels
    label_start = i + 1;
  }
  // RFC 6066 §3: literal IP addresses are not permitted in HostName. IPv6 literals already fail the
  // byte check (':'); an all-numeric last label is an IPv4 literal (no top-level domain is numeric,
  // RFC 3696 §2). Real browsers send no SNI for IP hosts, so this is refused, not treated as absent.
  const std::string_view last = std::string_view(name).substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  return !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). Every declared length is checked against
// the container it sits in before its bytes are read, so a wrong length is malformed as soon as it
// is seen and missing bytes are only ever need_more.
class HelloParser {
 public:
  HelloParser(HandshakeReader& reader, ClientHelloInfo& info) : r_(reader), info_(info) {}

  Step run() {
    std::uint32_t type = 0;
    std::uint32_t length = 0;
    if (const Step s = r_.read_uint(1, type); s != Step::ok) return s;
    if (type != kHandshakeClientHello) return Step::malformed;
    if (const Step s = r_.read_uint(3, length); s != Step::ok) return s;
    r_.set_message_length(4 + std::size_t{length});
    std::size_t body = length;

    std::uint32_t value = 0;
    if (const Step s = read_in(2, body, value); s != Step::ok) return s;
    info_.legacy_version = static_cast<std::uint16_t>(value);
    if (const Step s = skip_in(kRandomBytes, body); s != Step::ok) return s;
    if (const Step s = read_in(1, body, value); s != Step::ok) return s;
    if (value > kMaxSessionIdBytes) return Step::malformed;
    if (const Step s = skip_in(value, body); s != Step::ok) return s;
    if (const Step s = read_in(2, body, value); s != Step::ok) return s;
    if (value < 2 || value % 2 != 0) return Step::malformed;  // cipher suites are 2 bytes each
    if (const Step s = skip_in(value, body); s != Step::ok) return s;
    if (const Step s = read_in(1, body, value); s != Step::ok) return s;
    if (value < 1) return Step::malformed;
    if (const Step s = skip_in(value, body); s != Step::ok) return s;
    if (body == 0) return Step::ok;  // a TLS 1.2 hello may omit the extensions block entirely

    if (const Step s = read_in(2, body, value); s != Step::ok) return s;
    if (value != body) return Step::malformed;  // the extensions end exactly where the hello does
    std::size_t extensions = body;
    while (extensions > 0) {
      std::uint32_t ext_type = 0;
      std::uint32_t ext_length = 0;
      if (const Step s = read_in(2, extensions, ext_type); s != Step::ok) return s;
      if (const Step s = read_in(2, extensions, ext_length); s != Step::ok) return s;
      if (ext_length > extensions) return Step::malformed;
      extensions -= ext_length;
      std::size_t data = ext_length;
      Step s = Step::ok;
      switch (ext_type) {
        case kExtServerName: s = server_name(data); break;
        case kExtAlpn: s = alpn(data); break;
        case kExtSupportedVersions: s = supported_versions(data); break;
        default: s = skip_in(data, data); break;
      }
      if (s != Step::ok) return s;
      if (data != 0) return Step::malformed;  // the inner lengths must fill the extension exactly
    }
    return Step::ok;
  }

 private:
  // Reads an n-byte field that must fit in `left`, the bytes remaining in its container.
  Step read_in(std::size_t n, std::size_t& left, std::uint32_t& out) {
    if (n > left) return Step::malformed;
    left -= n;
    return r_.read_uint(n, out);
  }

  Step skip_in(std::size_t n, std::size_t& left) {
    if (n > left) return Step::malformed;
    left -= n;
    return r_.skip(n);
  }

  // RFC 6066 §3. Like OpenSSL, exactly one entry and it must be a host_name: no other name type
  // has ever been defined, and a second host_name is forbidden.
  // (Duplicate extensions of the types we read are malformed, RFC 8446 §4.2; other types are not
  // tracked, which would need a set.)
  Step server_name(std::size_t& left) {
    if (seen_server_name_) return Step::malformed;
    seen_server_name_ = true;
    std::uint32_t list = 0;
    if (const Step s = read_in(2, left, list); s != Step::ok) return s;
    if (list == 0 || list != left) return Step::malformed;
    std::uint32_t name_type = 0;
    std::uint32_t name_length = 0;
    if (const Step s = read_in(1, left, name_type); s != Step::ok) return s;
    if (name_type != kNameTypeHostName) return Step::malformed;
    if (const Step s = read_in(2, left, name_length); s != Step::ok) return s;
    if (name_length == 0 || name_length > kMaxHostNameBytes + 1 || name_length > left) return Step::malformed;
    if (left != name_length) return Step::malformed;  // anything after the one host_name
    left -= name_length;
    std::string name;
    name.reserve(name_length);
    bool clean = true;
    const Step s = r_.consume(name_length, [&](std::span<const std::uint8_t> chunk) {
      for (const std::uint8_t c : chunk) {
        clean = clean && allowed_host_byte(c);
        name.push_back(static_cast<char>(to_lower(c)));
      }
    });
    if (s != Step::ok) return s;
    if (!clean || !normalise_host_name(name)) return Step::malformed;
    info_.sni = std::move(name);
    return Step::ok;
  }

  // RFC 7301 §3.1: a non-empty list of non-empty protocol names.
  Step alpn(std::size_t& left) {
    if (seen_alpn_) return Step::malformed;
    seen_alpn_ = true;
    std::uint32_t list = 0;
    if (const Step s = read_in(2, left, list); s != Step::ok) return s;
    if (list < 2 || list != left) return Step::malformed;
    while (left > 0) {
      std::uint32_t n = 0;
      if (const Step s = read_in(1, left, n); s != Step::ok) return s;
      if (n == 0 || n > left) return Step::malformed;
      left -= n;
      std::string protocol;
      protocol.reserve(n);
      const Step s = r_.consume(n, [&protocol](std::span<const std::uint8_t> chunk) {
        protocol.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
      });
      if (s != Step::ok) return s;
      info_.alpn.push_back(std::move(protocol));
    }
    return Step::ok;
  }

  // RFC 8446 §4.2.1: ProtocolVersion versions<2..254>.
  Step supported_versions(std::size_t& left) {
    if (seen_supported_versions_) return Step::malformed;
    seen_supported_versions_ = true;
    std::uint32_t n = 0;
    if (const Step s = read_in(1, left, n); s != Step::ok) return s;
    if (n < 2 || n % 2 != 0 || n != left) return Step::malformed;
    if (const Step s = skip_in(n, left); s != Step::ok) return s;
    info_.has_supported_versions = true;
    return Step::ok;
  }

  HandshakeReader& r_;
  ClientHelloInfo& info_;
  bool seen_server_name_ = false;
  bool seen_alpn_ = false;
  bool seen_supported_versions_ = false;
};

}  // namespace

ClientHelloResult parse_client_hello(std::span<const std::uint8_t> bytes, std::size_t max_bytes) {
  ClientHelloResult result;
  HandshakeReader reader(bytes, max_bytes);
  switch (HelloParser(reader, result.info).run()) {
    case Step::ok: result.status = ClientHelloStatus::complete; return result;
    case Step::need_more:
      result.status = ClientHelloStatus::need_more;
      result.bytes_needed = reader.bytes_needed();
      break;
    case Step::not_tls: result.status = ClientHelloStatus::not_tls; break;
    case Step::malformed: result.status = ClientHelloStatus::malformed; break;
    case Step::too_large: result.status = ClientHelloStatus::too_large; break;
  }
  result.info = ClientHelloInfo{};  // half-parsed fields must not be mistaken for a routing answer
  return result;
}

std::string_view to_string(ClientHelloStatus status) {
  switch (status) {
    case ClientHelloStatus::need_more: return "need_more";
    case ClientHelloStatus::complete: return "complete";
    case ClientHelloStatus::not_tls: return "not_tls";
    case ClientHelloStatus::malformed: return "malformed";
    case ClientHelloStatus::too_large: return "too_large";
  }
  return "unknown";
}

}  // namespace inkwire::proto
