// 'a' would bind 97: a char is not a parameter.
#include "molt/db/value.hpp"

int main() {
  const molt::db::Param p('a');
  (void)p;
}
