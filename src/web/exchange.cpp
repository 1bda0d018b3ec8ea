#include "exchange.hpp"

#include "response_writer.hpp"

namespace molt::web::detail {

boost::asio::awaitable<bool> answer_request(const App& app, Request& request, std::string& out,
                                            core::CancelToken token, bool closing) {
  Ctx ctx(app, std::move(token));
  const Response response = co_await app.handle(request, ctx);
  const bool keep_alive = request.keep_alive() && !closing;
  write_response(out, response, {request.version(), keep_alive, request.method() == "HEAD"});
  co_return keep_alive;
}

void write_read_error(std::string& out, const ReadError& error) {
  write_response(out, Response::error(error.status, error.code, error.message), {11, false, false});
}

}  // namespace molt::web::detail
