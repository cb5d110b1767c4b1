#pragma once
#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace inkwire {

using Logger = std::shared_ptr<spdlog::logger>;

// A logger writing one line per event to stderr (systemd/journald and `scripts/up` capture it).
// Created in main and passed in; nothing registers it globally.
// Returns nullptr-free logger; an unknown level falls back to info.
Logger make_logger(const std::string& name, const std::string& level);

}  // namespace inkwire
