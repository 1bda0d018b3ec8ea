// Writes a few rows to a SQLite file through molt::db and reads their count back. Exits 0
// when the count is right.
#include <cstdio>
#include <filesystem>
#include <string>

#include "molt/db/sqlite.hpp"

int main() {
  const std::string path = "counts.sqlite3";  // in the working folder, made afresh
  std::filesystem::remove(path);
  molt::db::SqliteOptions options;
  options.path = path;
  options.read_write = true;
  options.create = true;
  auto db = molt::db::open_sqlite(options);
  db->execute("CREATE TABLE visits(page TEXT NOT NULL)");
  for (const char* page : {"/", "/about", "/"})
    db->execute("INSERT INTO visits(page) VALUES (?)", molt::db::Params::positional({{page}}));
  const auto n =
      db->query("SELECT count(*) AS n FROM visits WHERE page = '/'").get<std::int64_t>(0, "n");
  if (n != 2) {
    std::fprintf(stderr, "counts: expected 2 visits of /, got %lld\n", static_cast<long long>(n));
    return 1;
  }
  std::puts("counts: ok");
  return 0;
}
