#include "common/listen_address.h"

#include <charconv>

namespace inkwire {

Expected<boost::asio::ip::tcp::endpoint, std::string> parse_listen_address(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return unexpected("listen address '" + address + "' must be host:port");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(host, ec);
  if (ec) return unexpected("listen address '" + address + "' needs a literal IP address");
  const std::string port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc() || ptr != port_text.data() + port_text.size() || port_text.empty() || port > 65535)
    return unexpected("listen address '" + address + "' has a bad port");
  return boost::asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace inkwire
