// A coroutine typed handler that takes a reader by reference: the value it names is gone once
// the coroutine first suspends, so it is refused.
#include "molt/web/typed_handler.hpp"

int main() {
  molt::web::App app;
  app.get("/notes/{id}", [](const molt::web::Path<"id", int>& id) -> boost::asio::awaitable<int> {
    co_return *id;
  });
}
