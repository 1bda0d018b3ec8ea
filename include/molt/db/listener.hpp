#pragma once
// PostgreSQL's LISTEN: a connection of its own that hears the NOTIFYs of some channels, so
// that a process learns of work another one wrote (a job enqueued) without asking again and
// again. Database::listen() makes one; SQLite has none.

#include <string>
#include <vector>

#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"

namespace molt::db {

struct Notification {
  std::string channel;
  std::string payload;
};

class Listener {
 public:
  virtual ~Listener() = default;

  struct Heard {
    std::vector<Notification> notifications;
    // The connection was lost and opened again (listening again) since the last wait: what
    // was sent meanwhile was not heard, so the caller should look for itself.
    bool may_have_missed = false;
  };
  // Waits until notifications come (all that came are given), `deadline` passes or `cancel`
  // fires (nothing, then). The first wait opens the connection; a failure to open it or to
  // listen is thrown (core::Error), and the next wait tries again.
  virtual Heard wait(core::Deadline deadline, const core::CancelToken& cancel) = 0;
};

}  // namespace molt::db
