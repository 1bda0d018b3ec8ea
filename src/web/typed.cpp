#include "molt/web/typed.hpp"

namespace molt::web {

bool prefers_msgpack(const Request& request) {
  const auto accept = request.header("Accept");
  if (!accept) return false;
  const std::string_view text = *accept;
  std::size_t msgpack_at = std::string_view::npos;
  for (const std::string_view name : {"application/msgpack", "application/x-msgpack"})
    msgpack_at = std::min(msgpack_at, text.find(name));
  if (msgpack_at == std::string_view::npos) return false;
  const std::size_t json_at = std::min(text.find("application/json"), text.find("*/*"));
  return msgpack_at < json_at;
}

}  // namespace molt::web
