// TestClient: drives an App through the whole HTTP stack in-process, with no sockets: the
// bytes of a request go through the server's own parser, limits, router, middleware and
// handler, and the answer through its serializer.
//
//   molt::web::TestClient client(app);
//   auto response = client.get("/users/42");
//   EXPECT_EQ(response.status, 200);
//   auto raw = client.raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");   // exact bytes, for protocol
//   tests
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/web/app.hpp"
#include "molt/web/limits.hpp"

namespace molt::web {

struct TestResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const;
};

class TestClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  explicit TestClient(App& app, Limits limits = {});

  TestResponse get(std::string_view target, const Headers& headers = {});
  TestResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                       const Headers& headers = {});
  // Feeds `bytes` as one connection's input (then end of input) and returns every byte the
  // server wrote back: several requests give several answers, in order.
  std::string raw(std::string_view bytes);
  // The answers in a byte stream, in order (HEAD answers have no body).
  static std::vector<TestResponse> parse_responses(std::string_view bytes, bool head = false);

 private:
  App& app_;
  Limits limits_;
};

}  // namespace molt::web
