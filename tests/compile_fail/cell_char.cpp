// A cell read as a char: refused, with what to read instead.
#include "molt/db/rows.hpp"

int main() {
  const molt::db::Rows rows;
  return rows.get<char>(0, "c");
}
