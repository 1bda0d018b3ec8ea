#include "exchange.hpp"

#include "response_writer.hpp"

namespace molt::web::detail {

boost::asio::awaitable<Answer> run_app(const App& app, const Request& request,
                                       core::CancelToken token, TaskGroup* tasks,
                                       BodyStream* body) {
  Ctx ctx(app, std::move(token), tasks, body);
  // Built in steps: GCC 12 mishandles an aggregate initialized from a co_await.
  Answer answer;
  answer.response = co_await app.handle(request, ctx);
  if (body != nullptr) answer.unread_body = !co_await body->finish(kMaxDrainBytes);
  co_return answer;
}

bool write_answer(std::string& out, const Request& request, const Response& response,
                  bool closing) {
  // HTTP/1.0 has no chunks: a streamed body ends where the connection does.
  const bool close_delimited = request.version() < 11 && sends_stream(request, response);
  const bool keep_alive = request.keep_alive() && !closing && !close_delimited;
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
