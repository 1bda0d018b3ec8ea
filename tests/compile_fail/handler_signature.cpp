// A handler that takes a non-const Request: refused with the shapes a handler may have.
#include "molt/web/app.hpp"

int main() {
  molt::web::App app;
  app.get("/",
          [](molt::web::Request&, molt::web::Ctx&) -> boost::asio::awaitable<molt::web::Response> {
            co_return molt::web::Response::text("hi");
          });
}
