#pragma once
// What every public connection of the edge needs, built once by Edge and passed by reference.
// Everything here lives on the relay's executor (one thread), like the relay itself.
#include <string>

#include "common/config.h"
#include "common/logging.h"
#include "edge/edge_metrics.h"
#include "edge/public_route_directory.h"
#include "relay/session_registry.h"

namespace inkwire::edge {

struct EdgeContext {
  const EdgeConfig& config;
  const std::string& zone;
  relay::SessionRegistry& registry;  // the seam: dispatch() an InboundCall, get an Exchange
  PublicRouteDirectory& directory;
  EdgeMetrics& metrics;
  Logger logger;
  bool draining = false;  // SIGTERM: keep-alive connections close after their current request
};

}  // namespace inkwire::edge
