// between(10, 0) can never be met: refused where the struct is decoded.
#include "molt/codec/json.hpp"

namespace sample {
struct Page {
  int size = 1;
};
BOOST_DESCRIBE_STRUCT(Page, (), (size))
MOLT_RULES(Page, rule(&Page::size, between(10, 0)))
}  // namespace sample

int main() {
  return molt::codec::decode_json<sample::Page>(R"({"size":3})").size;
}
