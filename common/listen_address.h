#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "common/expected.h"

namespace inkwire {

// Parses a listen address, "host:port" or "[v6]:port", with a literal IP (no DNS at bind time).
// Error: one line naming the address.
Expected<boost::asio::ip::tcp::endpoint, std::string> parse_listen_address(const std::string& address);

}  // namespace inkwire
