#pragma once
// LISTEN on a connection of its own (molt/db/listener.hpp). Internal to molt::db.

#include <memory>
#include <string>
#include <vector>

#include "molt/db/listener.hpp"
#include "molt/db/postgres.hpp"

namespace molt::db::pg {

std::unique_ptr<Listener> make_listener(const PostgresOptions& options,
                                        const std::vector<std::string>& channels);

}  // namespace molt::db::pg
