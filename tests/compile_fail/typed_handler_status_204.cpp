// A Status of a code that has no body: the value would be dropped, so it is refused.
#include "molt/web/typed_handler.hpp"

int main() {
  molt::web::App app;
  app.del("/notes", [] { return molt::web::Status<204, int>(1); });
}
