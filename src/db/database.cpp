#include "molt/db/database.hpp"

namespace molt::db {

std::unique_ptr<Listener> Database::listen(const std::vector<std::string>&) {
  throw core::InvalidInput("LISTEN is PostgreSQL's: this database cannot listen for notifications");
}

}  // namespace molt::db
