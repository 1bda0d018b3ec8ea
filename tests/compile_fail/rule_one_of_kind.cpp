// one_of(1, 2) on a text member: the values are of another kind.
#include "molt/codec/json.hpp"

namespace sample {
struct Item {
  std::string status;
};
BOOST_DESCRIBE_STRUCT(Item, (), (status))
MOLT_RULES(Item, rule(&Item::status, one_of(1, 2)))
}  // namespace sample

int main() {
  return static_cast<int>(
      molt::codec::decode_json<sample::Item>(R"({"status":"1"})").status.size());
}
