#include "exchange.hpp"

#include "response_writer.hpp"

namespace molt::web::detail {

boost::asio::awaitable<Response> run_app(const App& app, const Request& request,
                                         core::CancelToken token, TaskGroup* tasks) {
  Ctx ctx(app, std::move(token), tasks);
  co_return co_await app.handle(request, ctx);
}

bool write_answer(std::string& out, const Request& request, const Response& response,
                  bool closing) {
  const bool keep_alive = request.keep_alive() && !closing;
  write_response(out, response, {request.version(), keep_alive, request.method() == "HEAD"});
  return keep_alive;
}

bool sends_stream(const Request& request, const Response& response) {
  const int status = response.status();
  const bool bodiless = status < 200 || status == 204 || status == 304;
  return response.streaming() && !bodiless && request.method() != "HEAD";
}

void frame_piece(std::string& out, const Request& request, std::string_view piece) {
  if (request.version() >= 11) {
    append_chunk(out, piece);
  } else {
    out += piece;
  }
}

void frame_end(std::string& out, const Request& request) {
  if (request.version() >= 11) out += kLastChunk;
}

void write_read_error(std::string& out, const ReadError& error) {
  write_response(out, Response::error(error.status, error.code, error.message), {11, false, false});
}

}  // namespace molt::web::detail
