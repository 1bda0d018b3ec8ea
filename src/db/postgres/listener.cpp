#include "listener.hpp"

#include <algorithm>
#include <utility>

#include "connection.hpp"

namespace molt::db::pg {
namespace {

// A channel is an identifier of ours: quoted, it is taken as written (no case folding).
bool is_channel_name(std::string_view name) {
  return !name.empty() && name.size() <= 63 && !(name[0] >= '0' && name[0] <= '9') &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
         });
}

class PgListener final : public Listener {
 public:
  PgListener(const PostgresOptions& options, const std::vector<std::string>& channels)
      : options_(options), connection_(options_) {
    if (channels.empty()) throw core::InvalidInput("listen() needs at least one channel");
    for (const std::string& channel : channels) {
      if (!is_channel_name(channel))
        throw core::InvalidInput("a channel to listen on is 1 to 63 letters, digits and _ (got \"" +
                                 core::one_line(channel.substr(0, 80)) + "\")");
      listen_sql_ += "LISTEN \"" + channel + "\";";
    }
  }

  Heard wait(core::Deadline deadline, const core::CancelToken& cancel) override {
    Heard heard;
    if (!connection_.is_open()) {
      connection_.ensure_open(deadline, cancel);
      connection_.run_simple(listen_sql_, deadline, cancel);
      heard.may_have_missed = opened_before_;
      opened_before_ = true;
    }
    connection_.clear_wake();
    auto wake = cancel.on_cancel([this] { connection_.wake(); });
    PGconn* conn = connection_.handle();
    for (;;) {
      if (!PQconsumeInput(conn)) {
        // Lost: the next wait opens it again, and says that something may have been missed.
        connection_.close();
        heard.may_have_missed = true;
        return heard;
      }
      while (PGnotify* notify = PQnotifies(conn)) {
        heard.notifications.push_back({notify->relname, notify->extra ? notify->extra : ""});
        PQfreemem(notify);
      }
      if (!heard.notifications.empty() || cancel.cancelled()) return heard;
      if (connection_.wait(SocketWaiter::kRead, deadline.at()) != WaitResult::kReady) return heard;
    }
  }

 private:
  PostgresOptions options_;  // before connection_, which keeps a reference to it
  Connection connection_;
  std::string listen_sql_;
  bool opened_before_ = false;
};

}  // namespace

std::unique_ptr<Listener> make_listener(const PostgresOptions& options,
                                        const std::vector<std::string>& channels) {
  return std::make_unique<PgListener>(options, channels);
}

}  // namespace molt::db::pg
