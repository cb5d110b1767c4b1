#pragma once
// The zone certificate (tls.cert_file / tls.key_file) as TLS contexts for the edge (ALPN h2 and
// http/1.1) and the relay (h2 only). Reloaded on SIGHUP and when either file changes (polled),
// without dropping a connection: a connection keeps the context it started with (OpenSSL
// reference-counts it) and new ones get the new one. A reload that fails (a half-written file,
// a key that does not match) keeps the old certificate, logs one line and counts it.
#include <chrono>
#include <ctime>
#include <functional>
#include <string>

#include "common/expected.h"
#include "common/logging.h"
#include "common/tls_server_context.h"
#include "edge/edge_metrics.h"

namespace inkwire::edge {

class CertificateStore {
 public:
  CertificateStore(std::string cert_file, std::string key_file, EdgeMetrics& metrics, Logger logger);

  // The first load; its error is fatal at start (one line).
  Expected<Unit, std::string> load();
  // SIGHUP: load again whatever the files look like. false when the new files are unusable.
  bool reload();
  // The poll: reload when a file's modification time or size changed since the last load.
  bool reload_if_changed();

  SSL_CTX* edge_context() const { return edge_.get(); }
  // Called with a fresh relay context after every successful (re)load.
  std::function<void(SslCtxPtr)> on_relay_context;

 private:
  struct FileStamp {
    std::int64_t mtime_ns = 0;
    std::int64_t size = -1;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp stamp(const std::string& path);
  Expected<Unit, std::string> load_now();

  std::string cert_file_;
  std::string key_file_;
  EdgeMetrics& metrics_;
  Logger logger_;
  SslCtxPtr edge_;
  FileStamp cert_stamp_;
  FileStamp key_stamp_;
};

}  // namespace inkwire::edge
