#include "tests/support/test_agent.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "common/tls_server_context.h"
#include "proto/protocol_constants.h"

namespace inkwire::testing {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxWrite = 256 * 1024;  // frames coalesced into one socket write
// Posting to the io thread is immediate; the slack only covers a loaded CI machine.
constexpr std::chrono::milliseconds kCallSlack{1000};

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

std::optional<std::string> StreamState::header(std::string_view name) const {
  for (const proto::H2Header& h : headers) {
    if (h.name == name) return h.value;
  }
  return std::nullopt;
}

std::vector<std::string> StreamState::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const proto::H2Header& h : headers) {
    if (h.name == name) out.push_back(h.value);
  }
  return out;
}

// Everything below the "io thread only" line is touched by the io thread alone; the part under
// mu_ is what the test thread reads and waits on.
struct TestAgent::Impl {
  explicit Impl(const AgentOptions& options)
      : options_(options),
        work_(asio::make_work_guard(io_)),
        tls_(ssl::context::tls_client),
        resolver_(io_),
        timer_(io_),
        read_buf_(kReadChunk) {}
  ~Impl() { stop_thread(); }

  void stop_thread() {
    if (!thread_.joinable()) return;
    // Abrupt by design: pending operations are dropped with the io_context, nothing is flushed.
    io_.stop();
    thread_.join();
  }

  // ---- test thread -------------------------------------------------------------------------
  std::chrono::milliseconds bound(Timeout t) const { return t.value_or(options_.timeout); }

  // Runs fn on the io thread and returns its result; nullopt if the io thread did not answer.
  template <typename R, typename F>
  std::optional<R> call(F fn) {
    auto done = std::make_shared<std::promise<R>>();
    std::future<R> result = done->get_future();
    asio::post(io_, [done, fn = std::move(fn)]() mutable { done->set_value(fn()); });
    if (result.wait_for(options_.timeout + kCallSlack) != std::future_status::ready) {
      return std::nullopt;
    }
    return result.get();
  }
  template <typename F>
  void run(F fn) {
    call<bool>([fn = std::move(fn)]() mutable {
      fn();
      return true;
    });
  }

  template <typename Pred>
  bool wait(Timeout t, Pred pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, bound(t), pred);
  }

  // Waits for cond(stream) (or the stream's end/close when or_closed, or a dead transport).
  template <typename Cond>
  std::optional<StreamState> wait_stream(int32_t stream, Timeout t, Cond cond) {
    std::unique_lock lock(mu_);
    const bool ok = cv_.wait_for(lock, bound(t), [&] {
      const StreamState& s = streams_[stream];
      return cond(s) || disconnected_;
    });
    if (!ok) return std::nullopt;
    return streams_[stream];
  }

  std::string setup_tls() {
    error_code ec;
    SSL_CTX* ctx = tls_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!options_.alpn.empty()) {
      const std::string wire = alpn_wire_format(options_.alpn);
      if (wire.empty()) return "bad ALPN list";
      // Unlike most OpenSSL calls, 0 means success here.
      if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                  static_cast<unsigned>(wire.size())) != 0) {
        return "cannot set ALPN";
      }
    }
    if (!options_.ca_file.empty()) {
      tls_.load_verify_file(options_.ca_file, ec);
      if (ec) return "cannot load CA file " + options_.ca_file + ": " + ec.message();
      tls_.set_verify_mode(ssl::verify_peer);
    } else {
      tls_.set_verify_mode(ssl::verify_none);
    }
    stream_ = std::make_unique<ssl::stream<tcp::socket>>(io_, tls_);
    SSL* ssl_handle = stream_->native_handle();
    if (!options_.sni.empty() && SSL_set_tlsext_host_name(ssl_handle, options_.sni.c_str()) != 1) {
      return "cannot set SNI " + options_.sni;
    }
    if (!options_.ca_file.empty()) {
      // Check the certificate names what we dialled: the SNI when sent, else the host (IP SANs
      // need the IP form of the check).
      const std::string& name = options_.sni.empty() ? options_.host : options_.sni;
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      asio::ip::make_address(name, ec);
      const int ok = ec ? X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size())
                        : X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      if (ok != 1) return "cannot set the name to verify: " + name;
    }
    return {};
  }

  // ---- io thread ---------------------------------------------------------------------------
  void start_connect(std::shared_ptr<std::promise<std::string>> done) {
    connect_done_ = std::move(done);
    timer_.expires_after(options_.timeout);
    timer_.async_wait([this](const error_code& ec) {
      if (ec || !connect_done_) return;
      connect_timed_out_ = true;
      resolver_.cancel();
      error_code ignored;
      stream_->lowest_layer().close(ignored);
    });
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port),
        [this](const error_code& ec, const tcp::resolver::results_type& results) {
          if (ec) return finish_connect("resolve " + options_.host + ": " + ec.message());
          asio::async_connect(
              stream_->lowest_layer(), results,
              [this](const error_code& cec, const tcp::endpoint&) {
                if (cec) return finish_connect("TCP connect: " + cec.message());
                error_code ignored;
                stream_->lowest_layer().set_option(tcp::no_delay(true), ignored);
                stream_->async_handshake(ssl::stream_base::client,
                                         [this](const error_code& hec) { on_handshake(hec); });
              });
        });
  }

  void on_handshake(const error_code& ec) {
    SSL* ssl_handle = stream_->native_handle();
    if (ec) {
      std::string why = "TLS handshake: " + ec.message();
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      return finish_connect(why);
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl_handle, &alpn, &alpn_len);
    const std::string selected(reinterpret_cast<const char*>(alpn), alpn_len);
    if (selected != "h2") {
      return finish_connect(selected.empty()
                                ? std::string("the server selected no ALPN protocol (h2 required)")
                                : "the server selected ALPN '" + selected + "' (h2 required)");
    }
    proto::H2Settings settings;
    settings.initial_window_size = options_.initial_window_size;
    settings.connection_window = options_.connection_window;
    auto session = proto::H2Session::create(proto::H2Session::Role::client, settings);
    if (!session) return finish_connect("H2Session: " + session.error().detail);
    session_ = std::move(session).value();
    finish_connect({});
  }

  void finish_connect(std::string error) {
    if (!connect_done_) return;
    timer_.cancel();
    auto done = std::move(connect_done_);
    connect_done_.reset();
    if (connect_timed_out_) error = "timed out (" + error + ")";
    if (!error.empty()) {
      error_code ignored;
      stream_->lowest_layer().close(ignored);
      done->set_value(std::move(error));
      return;
    }
    transport_open_ = true;
    {
      std::lock_guard lock(mu_);
      connected_ = true;
    }
    start_read();
    flush();  // the connection preface and our SETTINGS
    done->set_value({});
  }

  void start_read() {
    stream_->async_read_some(asio::buffer(read_buf_), [this](const error_code& ec, size_t n) {
      if (ec) return on_transport_error(ec);
      // After a fatal session error the bytes are only read to notice the close.
      if (session_->want_read()) {
        auto r = session_->receive(std::span<const uint8_t>(read_buf_.data(), n));
        if (!r) record_session_error("receive: " + r.error().detail);
      }
      drain_events();
      flush();
      start_read();
    });
  }

  void on_transport_error(const error_code& ec) {
    // asio reports the peer's close_notify as eof; a TCP close without it as stream_truncated.
    mark_disconnected(ec == asio::error::eof);
  }

  void mark_disconnected(bool close_notify) {
    transport_open_ = false;
    error_code ignored;
    stream_->lowest_layer().close(ignored);
    {
      std::lock_guard lock(mu_);
      if (!disconnected_) close_notify_ = close_notify;
      disconnected_ = true;
      connected_ = false;
    }
    cv_.notify_all();
  }

  void record_session_error(std::string what) {
    {
      std::lock_guard lock(mu_);
      if (!session_error_) session_error_ = std::move(what);
    }
    cv_.notify_all();
  }

  void set_last_error(std::string what) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(what);
  }

  // One writer: serialize everything the session has into one buffer, write it whole, repeat.
  void flush() {
    if (writing_ || !transport_open_ || shutting_down_ || !session_) return;
    write_buf_.clear();
    for (int round = 0; round < 8 && write_buf_.size() < kMaxWrite; ++round) {
      auto n = session_->produce(write_buf_, kMaxWrite - write_buf_.size());
      // Sending can close streams or free buffer room; auto credit can queue WINDOW_UPDATEs.
      const bool had_events = drain_events();
      if (!n) {
        record_session_error("produce: " + n.error().detail);
        break;
      }
      if (*n == 0 && !had_events) break;
    }
    if (write_buf_.empty()) return;
    writing_ = true;
    asio::async_write(*stream_, asio::buffer(write_buf_), [this](const error_code& ec, size_t) {
      writing_ = false;
      if (ec) return on_transport_error(ec);
      if (shutting_down_) return begin_tls_shutdown();
      flush();
    });
  }

  // Returns whether there was any event.
  bool drain_events() {
    if (!session_) return false;
    bool any = false;
    std::vector<int32_t> writable;
    {
      std::lock_guard lock(mu_);
      while (auto ev = session_->next_event()) {
        any = true;
        std::visit(Overloaded{
                       [&](proto::H2ResponseHeaders& h) {
                         StreamState& s = streams_[h.stream_id];
                         s.status = h.status;
                         s.headers = std::move(h.headers);
                         s.headers_received = true;
                         if (h.end_stream) s.ended = true;
                       },
                       [&](proto::H2Data& d) {
                         StreamState& s = streams_[d.stream_id];
                         s.body.append(d.bytes.begin(), d.bytes.end());
                         s.received_total += d.bytes.size();
                         if (d.end_stream) s.ended = true;
                         if (!manual_credit_.contains(d.stream_id)) {
                           (void)session_->consume(d.stream_id, d.bytes.size());
                         }
                       },
                       [&](proto::H2StreamClosed& c) {
                         StreamState& s = streams_[c.stream_id];
                         s.closed = true;
                         s.error_code = c.error_code;
                         s.reset_by_peer = c.reset_by_peer;
                         outbound_.erase(c.stream_id);
                       },
                       [&](proto::H2StreamWritable& w) { writable.push_back(w.stream_id); },
                       [&](proto::H2GoAwayReceived& g) { goaway_ = std::move(g); },
                       [&](proto::H2SettingsReceived& s) { settings_ = s; },
                       [&](proto::H2PingAcked& p) { ping_acks_.insert(p.opaque); },
                       [&](proto::H2RequestHeaders&) {},  // server role only
                   },
                   *ev);
      }
    }
    for (int32_t id : writable) pump(id);
    if (any) cv_.notify_all();
    return any;
  }

  // Hands queued bytes of a stream to the session until it refuses more (H2StreamWritable brings
  // us back), then END_STREAM if asked for.
  void pump(int32_t id) {
    auto it = outbound_.find(id);
    if (it == outbound_.end()) return;
    Outbound& ob = it->second;
    bool failed = false;
    while (ob.off < ob.bytes.size()) {
      auto n = session_->write_data(id, std::string_view(ob.bytes).substr(ob.off));
      if (!n) {
        set_last_error("write_data: " + n.error().detail);
        failed = true;
        break;
      }
      if (*n == 0) break;
      ob.off += *n;
    }
    if (!failed && ob.off == ob.bytes.size()) {
      ob.bytes.clear();
      ob.off = 0;
      if (ob.end) {
        if (auto r = session_->end_stream(id); !r) {
          set_last_error("end_stream: " + r.error().detail);
          failed = true;
        }
      }
    }
    const size_t left = ob.bytes.size() - ob.off;
    if (failed || (left == 0 && ob.end)) outbound_.erase(it);
    {
      std::lock_guard lock(mu_);
      unaccepted_[id] = failed ? 0 : left;
      if (failed) send_failed_.insert(id);
    }
    cv_.notify_all();
  }

  void enqueue(int32_t id, std::string_view bytes, bool end) {
    Outbound& ob = outbound_[id];
    if (ob.off > 0) {
      ob.bytes.erase(0, ob.off);
      ob.off = 0;
    }
    ob.bytes.append(bytes);
    if (end) ob.end = true;
    {
      std::lock_guard lock(mu_);
      unaccepted_[id] = ob.bytes.size();
    }
    pump(id);
  }

  int32_t open_stream(const std::string& method, const std::string& path,
                      const proto::H2Headers& headers, const std::optional<std::string>& body,
                      const std::optional<std::string>& protocol, bool end_stream, bool manual) {
    if (!session_ || !transport_open_) {
      set_last_error("not connected");
      return -1;
    }
    const bool end_on_headers = !body.has_value() && end_stream;
    const std::string& authority =
        options_.authority.empty() ? options_.host : options_.authority;
    auto id = session_->submit_request(method, "https", authority, path, headers, end_on_headers,
                                       protocol);
    if (!id) {
      set_last_error("submit_request: " + id.error().detail);
      return -1;
    }
    {
      std::lock_guard lock(mu_);
      streams_[*id];
    }
    // Registered before any byte can arrive: data is only read on this thread.
    if (manual) manual_credit_.insert(*id);
    if (!end_on_headers && (body.has_value() || end_stream)) {
      enqueue(*id, body.value_or(std::string()), end_stream);
    }
    flush();
    return *id;
  }

  void begin_tls_shutdown() {
    // Bounded: a server that never answers close_notify gets the TCP close after the timeout.
    timer_.expires_after(options_.timeout);
    timer_.async_wait([this](const error_code& ec) {
      if (!ec) mark_disconnected(false);
    });
    // The pending read stays: asio's SSL stream lets a shutdown wait behind it, and it is the
    // read that sees the server's close_notify (eof) or its TCP close.
    stream_->async_shutdown([this](const error_code&) {
      timer_.cancel();
      std::lock_guard lock(mu_);
      shutdown_done_ = true;
    });
  }

  AgentOptions options_;
  // ---- io thread only (the io_context comes first: it must outlive the I/O objects)
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  ssl::context tls_;
  std::unique_ptr<ssl::stream<tcp::socket>> stream_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // the connect deadline, then the close_tls deadline
  std::shared_ptr<std::promise<std::string>> connect_done_;
  bool connect_timed_out_ = false;
  std::unique_ptr<proto::H2Session> session_;
  std::vector<uint8_t> read_buf_;
  std::string write_buf_;
  bool writing_ = false;
  bool transport_open_ = false;
  bool shutting_down_ = false;  // close_tls: no more frames, only the close_notify
  struct Outbound {
    std::string bytes;  // queued, not yet accepted by the session; served from off
    size_t off = 0;
    bool end = false;
  };
  std::unordered_map<int32_t, Outbound> outbound_;
  std::unordered_set<int32_t> manual_credit_;
  std::thread thread_;

  // ---- shared with the test thread
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<int32_t, StreamState> streams_;
  std::unordered_map<int32_t, size_t> unaccepted_;
  std::unordered_set<int32_t> send_failed_;
  bool connected_ = false;
  bool disconnected_ = false;
  bool close_notify_ = false;
  bool shutdown_done_ = false;
  std::optional<proto::H2GoAwayReceived> goaway_;
  std::optional<proto::H2SettingsReceived> settings_;
  std::multiset<uint64_t> ping_acks_;
  std::optional<std::string> session_error_;
  std::string last_error_;
};

TestAgent::TestAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestAgent::~TestAgent() = default;

Expected<std::unique_ptr<TestAgent>, std::string> TestAgent::connect(const AgentOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (std::string error = impl->setup_tls(); !error.empty()) return unexpected(error);
  Impl* p = impl.get();
  impl->thread_ = std::thread([p] {
    // A throwing handler must not take the test process down with std::terminate.
    for (;;) {
      try {
        p->io_.run();
        return;
      } catch (const std::exception& e) {
        p->record_session_error(std::string("io thread: ") + e.what());
      }
    }
  });
  auto done = std::make_shared<std::promise<std::string>>();
  std::future<std::string> result = done->get_future();
  asio::post(p->io_, [p, done] { p->start_connect(done); });
  if (result.wait_for(options.timeout + kCallSlack) != std::future_status::ready) {
    return unexpected(std::string("connect: no answer from the io thread"));
  }
  if (std::string error = result.get(); !error.empty()) return unexpected(error);
  return std::unique_ptr<TestAgent>(new TestAgent(std::move(impl)));
}

int32_t TestAgent::request(std::string_view method, std::string_view path,
                           const proto::H2Headers& headers, std::optional<std::string> body,
                           std::optional<std::string> protocol, bool end_stream) {
  Impl* p = impl_.get();
  const bool manual = !p->options_.auto_credit;
  auto id = p->call<int32_t>([p, m = std::string(method), pa = std::string(path), headers,
                              b = std::move(body), pr = std::move(protocol), end_stream, manual] {
    return p->open_stream(m, pa, headers, b, pr, end_stream, manual);
  });
  return id.value_or(-1);
}

bool TestAgent::send_data(int32_t stream, std::string_view bytes, bool end_stream, Timeout t) {
  Impl* p = impl_.get();
  const bool posted = p->call<bool>([p, stream, b = std::string(bytes), end_stream] {
                         if (!p->transport_open_) return false;
                         p->enqueue(stream, b, end_stream);
                         p->flush();
                         return true;
                       }).value_or(false);
  if (!posted) return false;
  std::unique_lock lock(p->mu_);
  const bool ok = p->cv_.wait_for(lock, p->bound(t), [&] {
    return p->unaccepted_[stream] == 0 || p->send_failed_.contains(stream) ||
           p->streams_[stream].closed || p->disconnected_;
  });
  return ok && p->unaccepted_[stream] == 0 && !p->send_failed_.contains(stream);
}

void TestAgent::end_stream(int32_t stream) {
  Impl* p = impl_.get();
  p->run([p, stream] {
    if (!p->session_) return;
    if (p->outbound_.contains(stream)) {
      p->enqueue(stream, {}, true);
    } else if (auto r = p->session_->end_stream(stream); !r) {
      p->set_last_error("end_stream: " + r.error().detail);
    }
    p->flush();
  });
}

void TestAgent::reset(int32_t stream, uint32_t code) {
  Impl* p = impl_.get();
  p->run([p, stream, code] {
    if (!p->session_) return;
    p->outbound_.erase(stream);
    if (auto r = p->session_->reset_stream(stream, code); !r) {
      p->set_last_error("reset_stream: " + r.error().detail);
    }
    p->flush();
  });
}

void TestAgent::goaway(uint32_t code, std::string debug_data) {
  Impl* p = impl_.get();
  p->run([p, code, d = std::move(debug_data)] {
    if (!p->session_) return;
    if (auto r = p->session_->goaway(code, d); !r) p->set_last_error("goaway: " + r.error().detail);
    p->flush();
  });
}

void TestAgent::ping(uint64_t opaque) {
  Impl* p = impl_.get();
  p->run([p, opaque] {
    if (!p->session_) return;
    if (auto r = p->session_->ping(opaque); !r) p->set_last_error("ping: " + r.error().detail);
    p->flush();
  });
}

std::optional<StreamState> TestAgent::wait_headers(int32_t stream, Timeout t) {
  return impl_->wait_stream(stream, t,
                            [](const StreamState& s) { return s.headers_received || s.closed; });
}

std::optional<StreamState> TestAgent::wait_end(int32_t stream, Timeout t) {
  return impl_->wait_stream(stream, t, [](const StreamState& s) { return s.ended || s.closed; });
}

std::optional<StreamState> TestAgent::wait_closed_stream(int32_t stream, Timeout t) {
  return impl_->wait_stream(stream, t, [](const StreamState& s) { return s.closed; });
}

std::optional<StreamState> TestAgent::wait_received(int32_t stream, size_t total_bytes,
                                                    Timeout t) {
  return impl_->wait_stream(stream, t, [total_bytes](const StreamState& s) {
    return s.received_total >= total_bytes || s.ended || s.closed;
  });
}

std::optional<std::string> TestAgent::read_data(int32_t stream, size_t min_bytes, Timeout t) {
  Impl* p = impl_.get();
  std::string taken;
  {
    std::unique_lock lock(p->mu_);
    const bool ok = p->cv_.wait_for(lock, p->bound(t), [&] {
      const StreamState& s = p->streams_[stream];
      return s.body.size() >= min_bytes || s.ended || s.closed || p->disconnected_;
    });
    if (!ok) return std::nullopt;
    taken.swap(p->streams_[stream].body);
  }
  if (!taken.empty()) {
    // Fire and forget: the credit is for the server's benefit, nothing here waits on it.
    asio::post(p->io_, [p, stream, n = taken.size()] {
      if (!p->session_ || !p->manual_credit_.contains(stream)) return;
      (void)p->session_->consume(stream, n);
      p->flush();
    });
  }
  return taken;
}

StreamState TestAgent::state(int32_t stream) const {
  std::lock_guard lock(impl_->mu_);
  auto it = impl_->streams_.find(stream);
  return it == impl_->streams_.end() ? StreamState{} : it->second;
}

bool TestAgent::wait_disconnected(Timeout t) {
  return impl_->wait(t, [p = impl_.get()] { return p->disconnected_; });
}

bool TestAgent::connected() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->connected_ && !impl_->disconnected_;
}

bool TestAgent::peer_sent_close_notify() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->close_notify_;
}

bool TestAgent::wait_goaway(Timeout t) {
  return impl_->wait(t, [p = impl_.get()] { return p->goaway_.has_value(); });
}

std::optional<proto::H2GoAwayReceived> TestAgent::goaway_received() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->goaway_;
}

bool TestAgent::wait_settings(Timeout t) {
  return impl_->wait(t, [p = impl_.get()] { return p->settings_.has_value(); });
}

std::optional<proto::H2SettingsReceived> TestAgent::server_settings() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->settings_;
}

bool TestAgent::wait_ping_ack(uint64_t opaque, Timeout t) {
  return impl_->wait(t, [p = impl_.get(), opaque] { return p->ping_acks_.contains(opaque); });
}

std::optional<std::string> TestAgent::session_error() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->session_error_;
}

std::string TestAgent::last_error() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->last_error_;
}

const AgentOptions& TestAgent::options() const { return impl_->options_; }

void TestAgent::close_abruptly(bool rst) {
  Impl* p = impl_.get();
  p->run([p, rst] {
    if (!p->transport_open_) return;
    error_code ignored;
    if (rst) p->stream_->lowest_layer().set_option(asio::socket_base::linger(true, 0), ignored);
    p->mark_disconnected(false);
  });
}

void TestAgent::close_tls() {
  Impl* p = impl_.get();
  p->run([p] {
    if (!p->transport_open_ || p->shutting_down_) return;
    p->shutting_down_ = true;
    // A write in flight finishes first (its completion starts the shutdown): Asio's SSL shutdown
    // started behind a pending write retries SSL_shutdown instead of writing the close_notify the
    // first call produced, so it would never leave.
    if (!p->writing_) p->begin_tls_shutdown();
  });
  // Bounded by begin_tls_shutdown's own timer.
  p->wait(p->options_.timeout + kCallSlack, [p] { return p->disconnected_ || p->shutdown_done_; });
  // Both outcomes end in a closed socket (after a clean shutdown the server may never close).
  p->run([p] {
    if (p->transport_open_) p->mark_disconnected(p->close_notify_);
  });
}

std::optional<TestAgent::HelloReply> TestAgent::hello(std::string_view tunnel_id,
                                                      std::string_view secret,
                                                      std::optional<int> pool_size, Timeout t) {
  namespace ch = proto::control_header;
  proto::H2Headers headers = {{std::string(ch::kTunnelId), std::string(tunnel_id)},
                              {std::string(ch::kTunnelSecret), std::string(secret)},
                              {"content-length", "0"}};
  if (pool_size) headers.push_back({std::string(ch::kPoolSize), std::to_string(*pool_size)});
  const int32_t id =
      request("POST", proto::control_path::kHello, headers, std::nullopt, std::nullopt, true);
  if (id < 0) return std::nullopt;
  auto st = wait_end(id, t);
  if (!st || !(st->ended || st->closed)) return std::nullopt;
  HelloReply reply;
  reply.status = st->status;
  // Taken through read_data so a manually credited session gives the bytes back, as the SDK does.
  reply.body = read_data(id, 0, t).value_or(std::string());
  error_code ec;
  reply.json = boost::json::parse(reply.body, ec);
  if (ec) reply.json = nullptr;
  if (const auto* obj = reply.json.if_object()) {
    if (const auto* tok = obj->if_contains("owner_token"); tok && tok->is_string()) {
      reply.owner_token = std::string(tok->as_string());
    }
    if (const auto* size = obj->if_contains("default_pool_size"); size && size->is_int64()) {
      reply.default_pool_size = static_cast<int>(size->as_int64());
    }
  }
  return reply;
}

int32_t TestAgent::open_intake(std::string_view tunnel_id, std::string_view owner_token,
                               int slot) {
  namespace ch = proto::control_header;
  const proto::H2Headers headers = {{std::string(ch::kTunnelId), std::string(tunnel_id)},
                                    {std::string(ch::kOwnerToken), std::string(owner_token)},
                                    {std::string(ch::kPoolSlot), std::to_string(slot)},
                                    {"content-length", "0"}};
  return request("POST", proto::control_path::kIntake, headers, std::nullopt, std::nullopt, true);
}

int32_t TestAgent::post_response(std::string_view tunnel_id, std::string_view secret,
                                 std::string_view request_id, int status,
                                 const proto::H2Headers& inkbox_h_headers, std::string body,
                                 const proto::H2Headers& extra) {
  namespace ch = proto::control_header;
  namespace mh = proto::meta_header;
  proto::H2Headers headers = {{std::string(ch::kTunnelId), std::string(tunnel_id)},
                              {std::string(ch::kTunnelSecret), std::string(secret)},
                              {std::string(mh::kStatus), std::to_string(status)},
                              {std::string(mh::kRequestId), std::string(request_id)},
                              {"content-length", std::to_string(body.size())}};
  for (const proto::H2Header& h : inkbox_h_headers) {
    std::string name(proto::kInkboxForwardedHeaderPrefix);
    for (char c : h.name) {
      name.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
    headers.push_back({std::move(name), h.value});
  }
  headers.insert(headers.end(), extra.begin(), extra.end());
  std::string path(proto::control_path::kResponsePrefix);
  path += request_id;
  std::optional<std::string> payload;
  if (!body.empty()) payload = std::move(body);  // else END_STREAM on HEADERS, as the SDKs do
  return request("POST", path, headers, std::move(payload), std::nullopt, true);
}

int32_t TestAgent::open_bridge(bool ws, std::string_view tunnel_id, std::string_view secret,
                               std::string_view bridge_id) {
  namespace ch = proto::control_header;
  proto::H2Headers headers = {{"sec-websocket-version", "13"}};
  if (!ws) headers.push_back({"sec-websocket-protocol", std::string(proto::subprotocol::kTcp)});
  headers.push_back({std::string(ch::kTunnelId), std::string(tunnel_id)});
  headers.push_back({std::string(ch::kTunnelSecret), std::string(secret)});
  headers.push_back({std::string(ws ? proto::meta_header::kWsId : proto::meta_header::kTcpId),
                     std::string(bridge_id)});
  std::string path(ws ? proto::control_path::kWsPrefix : proto::control_path::kTcpPrefix);
  path += bridge_id;
  const std::string protocol(ws ? proto::subprotocol::kWs : proto::subprotocol::kTcp);

  Impl* p = impl_.get();
  const bool manual = !p->options_.auto_credit || p->options_.manual_credit_bridges;
  auto id = p->call<int32_t>([p, headers, path, protocol, manual] {
    return p->open_stream("CONNECT", path, headers, std::nullopt, protocol, false, manual);
  });
  return id.value_or(-1);
}

}  // namespace inkwire::testing
