#include "controlplane/repo/pg/pg_listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <pqxx/pqxx>

namespace inkwire::controlplane {

namespace asio = boost::asio;

namespace {

// Collects notifications delivered by get_notifs() into the listener's callback.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, const std::string& channel, const PgListener::Callback& cb)
      : pqxx::notification_receiver(c, channel), cb_(cb) {}
  void operator()(const std::string& payload, int) override { cb_(channel(), payload); }

 private:
  const PgListener::Callback& cb_;
};

}  // namespace

PgListener::PgListener(std::string url, std::vector<std::string> channels, Callback on_notification,
                       std::function<void()> on_reconnect, Logger logger)
    : url_(std::move(url)),
      channels_(std::move(channels)),
      on_notification_(std::move(on_notification)),
      on_reconnect_(std::move(on_reconnect)),
      logger_(std::move(logger)) {}

asio::awaitable<void> PgListener::run() {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer backoff(executor);
  auto delay = std::chrono::milliseconds(250);
  bool first = true;
  while (!stopping_) {
    std::unique_ptr<pqxx::connection> conn;
    std::vector<std::unique_ptr<Receiver>> receivers;
    std::string error;
    try {
      // Connecting blocks briefly; it happens at startup and after a database outage only.
      conn = std::make_unique<pqxx::connection>(url_);
      for (const auto& ch : channels_) receivers.push_back(std::make_unique<Receiver>(*conn, ch, on_notification_));
      conn->get_notifs();  // issues the LISTENs
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      receivers.clear();
      logger_->warn("notification listener cannot connect ({}); retrying in {} ms", error, delay.count());
      {
        std::lock_guard lock(cancel_mutex_);
        // backoff outlives every posted cancel: it lives for the whole of run().
        cancel_ = [&backoff, executor] { asio::post(executor, [&backoff] { backoff.cancel(); }); };
      }
      backoff.expires_after(delay);
      if (stopping_) break;  // stop() ran before cancel_ was set
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      {
        std::lock_guard lock(cancel_mutex_);
        cancel_ = nullptr;
      }
      delay = std::min(delay * 2, std::chrono::milliseconds(10000));
      continue;
    }
    if (!first && on_reconnect_) on_reconnect_();
    first = false;
    delay = std::chrono::milliseconds(250);

    // Watch the libpq socket; dup() so closing the descriptor never closes libpq's own.
    auto socket_ptr = std::make_shared<asio::posix::stream_descriptor>(executor, ::dup(conn->sock()));
    auto& socket = *socket_ptr;
    {
      std::lock_guard lock(cancel_mutex_);
      cancel_ = [weak = std::weak_ptr(socket_ptr), executor] {
        asio::post(executor, [weak] {
          if (auto s = weak.lock()) s->cancel();
        });
      };
    }
    while (!stopping_) {  // re-checked after cancel_ is set, so a stop() cannot slip between
      auto [ec] = co_await socket.async_wait(asio::posix::stream_descriptor::wait_read, asio::as_tuple(asio::use_awaitable));
      if (ec || stopping_) break;
      try {
        conn->get_notifs();
        if (!conn->is_open()) break;
      } catch (const std::exception& e) {
        logger_->warn("notification listener lost its connection: {}", e.what());
        break;
      }
    }
    {
      std::lock_guard lock(cancel_mutex_);
      cancel_ = nullptr;
    }
  }
}

void PgListener::stop() {
  stopping_ = true;
  std::lock_guard lock(cancel_mutex_);
  if (cancel_) cancel_();
}

}  // namespace inkwire::controlplane
