#include "molt/web/gateway.hpp"

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "molt/core/cancel.hpp"

namespace molt::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kPieceBytes = 64 * 1024;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// RFC 9110 §7.6.1: these describe one hop and are not forwarded (with the fields the
// Connection header names), nor is anything addressed to a proxy (Proxy-*).
bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kNames = {
      "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
  for (const std::string_view hop : kNames)
    if (iequals(name, hop)) return true;
  return starts_with_ignoring_case(name, "Proxy-");
}

// What a client must not tell the upstream: the fields an upstream trusts as coming from
// its proxy (the gateway connects from loopback, which gunicorn trusts by default) say where
// the request came from and how (X-Scheme is nginx's common SECURE_PROXY_SSL_HEADER; the
// URL ones, IIS's, route some frameworks); the gateway sets its own. And names with an underscore,
// which WSGI servers turn into the same variables as dashes (`X_Forwarded_Proto`) or take as
// their own (`SCRIPT_NAME`, a path prefix Django would apply): dropped, as nginx does.
bool is_for_the_gateway_to_say(std::string_view name) {
  // `Proxy`: CGI-style servers turn it into HTTP_PROXY, which HTTP clients take for their
  // proxy (httpoxy).
  static constexpr std::array<std::string_view, 10> kNames = {
      "Forwarded",       "X-Real-IP",      "X-Client-IP",   "X-Url-Scheme", "X-Scheme",
      "Front-End-Https", "X-Original-URL", "X-Rewrite-URL", "Expect",       "Proxy"};
  for (const std::string_view own : kNames)
    if (iequals(name, own)) return true;
  return starts_with_ignoring_case(name, "X-Forwarded-") ||
         name.find('_') != std::string_view::npos;
}

// Every Connection header's options as one list: a field may come several times, and each
// counts (RFC 9110 §5.3).
template <class Fields, class NameOf, class ValueOf>
std::string connection_options(const Fields& fields, NameOf name_of, ValueOf value_of) {
  std::string options;
  for (const auto& field : fields) {
    if (!iequals(name_of(field), "Connection")) continue;
    if (!options.empty()) options += ", ";
    options += value_of(field);
  }
  return options;
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

tcp::endpoint resolve(const UpstreamOptions& options) {
  error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (!ec) return {address, options.port};
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
  if (ec || results.empty())
    throw std::invalid_argument("upstream host '" + options.host +
                                "' does not resolve: " + ec.message());
  return results.begin()->endpoint();
}

// Idle keep-alive connections, kept by the io_context their sockets belong to: a socket
// stays on the thread that opened it, and goes with its io_context (an Asio service), never
// after it. Keyed by upstream.
class IdleConnections : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit IdleConnections(asio::execution_context& context) : service(context) {}

  std::optional<tcp::socket> take(std::uint64_t upstream) {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(upstream);
    if (it == idle_.end() || it->second.empty()) return std::nullopt;
    tcp::socket socket = std::move(it->second.back());
    it->second.pop_back();
    return socket;
  }

  void give_back(std::uint64_t upstream, tcp::socket socket, std::size_t max) {
    std::lock_guard lock(mutex_);
    auto& sockets = idle_[upstream];
    if (sockets.size() < max) sockets.push_back(std::move(socket));
  }

 private:
  void shutdown() override {
    std::lock_guard lock(mutex_);
    idle_.clear();
  }

  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::vector<tcp::socket>> idle_;
};
asio::execution_context::id IdleConnections::id;

// An idle connection the upstream closed (or wrote to, which it must not) is of no use.
bool still_open(tcp::socket& socket) {
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct Upstream {
  explicit Upstream(UpstreamOptions o) : options(std::move(o)), endpoint(resolve(options)) {
    where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }
  UpstreamOptions options;
  tcp::endpoint endpoint;
  std::string where;
  // Tells its idle connections from other upstreams' (an address could be reused).
  std::uint64_t key = next_key.fetch_add(1);
  static inline std::atomic<std::uint64_t> next_key{1};
};

// One request's trip to the upstream and back. Shared with a streamed answer's producer,
// which outlives the handler; destroying it closes a connection that was not given back.
struct Exchange {
  Exchange(tcp::socket socket, bool reused)
      : stream(std::move(socket)), cut(stream.get_executor()), reused(reused) {
    cut.expires_at(asio::steady_timer::time_point::max());
  }
  beast::tcp_stream stream;
  asio::steady_timer cut;  // cancelled when a refusal came before the whole body went out
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reused;
  bool answered_interim = false;  // a 1xx came before the answer's head
  bool body_sent = false;         // the whole request went out
  bool body_cut = false;          // a refusal came first, and the rest of the body was not sent
  bool finished = false;          // read to its end (and given back to the pool when it could be)

  // Whether the upstream sent anything at all for this request.
  bool heard_from() const { return answered_interim || (parser && parser->got_some()); }
};

// How a kept connection fails when the upstream closed it just as the request went out: the
// only failure after which the request may be sent again (never after a timeout, which may
// mean the upstream is still working on it).
bool closed_under_us(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::not_connected;
}

template <typename Buffers>
asio::awaitable<error_code> write_all(Exchange& exchange, const Buffers& buffers) {
  auto [ec, n] = co_await asio::async_write(exchange.stream, buffers, kAwait);
  (void)n;
  co_return ec;
}

[[noreturn]] void fail(const Upstream& upstream, const Request& request, const Ctx& ctx,
                       std::string_view step, const error_code& ec) {
  // Stopped by the request's own cancellation: its reason gives the answer (504, 499, 503).
  if (ctx.cancelled()) throw boost::system::system_error(asio::error::operation_aborted);
  std::fprintf(stderr, "molt::web gateway: %.*s %.*s: %.*s %s: %s\n",
               static_cast<int>(request.method().size()), request.method().data(),
               static_cast<int>(request.target().size()), request.target().data(),
               static_cast<int>(step.size()), step.data(), upstream.where.c_str(),
               ec.message().c_str());
  if (ec == beast::error::timeout)
    throw HttpError(504, "gateway_timeout", "the upstream did not answer in time");
  throw HttpError(502, "bad_gateway", "the upstream failed to answer");
}

// The length a request declared, parsed: Beast lets through only lists of equal values
// ("5, 5"), which an upstream may refuse as written.
std::optional<std::uint64_t> declared_length(const Request& request) {
  const auto header = request.header("Content-Length");
  if (!header) return std::nullopt;
  std::string_view values = *header;
  const std::string_view first = next_list_element(values);
  std::uint64_t length = 0;
  const auto [end, ec] = std::from_chars(first.data(), first.data() + first.size(), length);
  if (ec != std::errc{} || end != first.data() + first.size()) return std::nullopt;
  return length;
}

// The head sent upstream: the request's own line and end-to-end headers, the gateway's
// X-Forwarded-* and the body's length (none: no body).
std::string request_head(const Request& request, const Upstream& upstream,
                         std::optional<std::uint64_t> content_length) {
  const std::string_view method = request.method() == "HEAD" ? "GET" : request.method();
  const std::string connection = connection_options(
      request.headers(), [](const auto& field) { return field.name; },
      [](const auto& field) { return field.value; });
  std::string head;
  head.reserve(256 + request.target().size());
  head.append(method).append(" ");
  if (request.target().starts_with('/')) {
    head.append(request.target());
  } else {  // absolute-form with no path of its own (`http://host?q`): sent in origin form
    head.append(request.path());
    if (!request.query().empty()) head.append("?").append(request.query());
  }
  head.append(" HTTP/1.1\r\n");
  std::string forwarded_for;
  for (const auto& [name, value] : request.headers()) {
    if (iequals(name, "X-Forwarded-For")) {
      if (!forwarded_for.empty()) forwarded_for += ", ";
      forwarded_for.append(value);
      continue;
    }
    if (iequals(name, "Host")) continue;  // request.host() below, which may not be this one
    if (is_hop_by_hop(name) || is_for_the_gateway_to_say(name) || iequals(name, "Content-Length") ||
        list_contains(connection, name))
      continue;
    head.append(name).append(": ").append(value).append("\r\n");
  }
  // The address this hop came from, as each proxy appends its own (the client's address that
  // proxy_headers may have found is further left in the list already).
  if (!request.peer_address().empty()) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for.append(request.peer_address());
  }
  if (!forwarded_for.empty()) head.append("X-Forwarded-For: ").append(forwarded_for).append("\r\n");
  head.append("X-Forwarded-Proto: ").append(request.scheme()).append("\r\n");
  // Always forwarded (HTTP/1.1 needs one), even when the Connection header names it; an
  // absolute-form target's authority is the request's host, not its Host header.
  if (const std::string_view host = request.host(); !host.empty()) {
    head.append("Host: ").append(host).append("\r\n");
    head.append("X-Forwarded-Host: ").append(host).append("\r\n");
  } else {  // HTTP/1.0 may leave it out; the upstream speaks HTTP/1.1, which needs one
    head.append("Host: ").append(upstream.where).append("\r\n");
  }
  if (content_length)
    head.append("Content-Length: ").append(std::to_string(*content_length)).append("\r\n");
  head.append("\r\n");
  return head;
}

class Proxy {
 public:
  explicit Proxy(std::shared_ptr<Upstream> upstream) : upstream_(std::move(upstream)) {}

  asio::awaitable<Response> operator()(const Request& request, Ctx& ctx) const {
    refuse_what_is_not_forwarded(request);
    const auto executor = co_await asio::this_coro::executor;
    auto& idle =
        asio::use_service<IdleConnections>(asio::query(executor, asio::execution::context));
    // A streamed body of declared length goes through as it arrives. A chunked one is
    // gathered first (within the fallback's body limit) and sent with its length: WSGI
    // servers read a body by its Content-Length, and Django would see a chunked one empty.
    const auto declared = declared_length(request);
    const bool body_streamed = ctx.body().streamed() && declared.has_value();
    std::string gathered;
    if (ctx.body().streamed() && !declared) gathered = co_await ctx.body().read_all();
    const std::string& body = ctx.body().streamed() ? gathered : request.body();
    std::optional<std::uint64_t> length;
    if (body_streamed)
      length = declared;
    else if (!body.empty() || declared || ctx.body().streamed())
      length = body.size();
    const std::string head = request_head(request, *upstream_, length);
    // A request the upstream may see twice: sent again, once, on a new connection when a
    // kept one turns out closed before any answer came (the upstream's keep-alive ran out).
    const bool replayable = idempotent(request.method()) && !body_streamed;
    std::shared_ptr<Exchange> exchange;
    core::CancelRegistration on_cancel;
    for (int attempt = 0;; ++attempt) {
      exchange = co_await open(idle, request, ctx, /*may_reuse=*/attempt == 0);
      // A client that leaves or a deadline that passes closes the upstream connection too.
      const std::weak_ptr<Exchange> weak = exchange;
      on_cancel = ctx.token().on_cancel([weak, executor] {
        asio::post(executor, [weak] {
          if (auto gone = weak.lock()) gone->stream.close();
        });
      });
      // The answer is read while the request goes out: an upstream that refuses an upload
      // (413, 401) answers before reading it all and may stop reading, and its answer is the
      // one to give, not a 502 for the write that could not finish.
      using namespace asio::experimental::awaitable_operators;
      const error_code ec = std::get<1>(
          co_await (send(*exchange, head, body, ctx, body_streamed) && read_head(*exchange)));
      // A 408 on a kept connection is the upstream closing it as its keep-alive ran out,
      // written as the request went out: not this request's answer (so Go's net/http reads it).
      const bool goodbye = !ec && exchange->reused && exchange->parser->get().result_int() == 408;
      if (!ec && !goodbye) break;
      if (exchange->reused && replayable && !ctx.cancelled() &&
          (goodbye || (closed_under_us(ec) && !exchange->heard_from())))
        continue;          // once: the next attempt is on a new connection, never a reused one
      if (goodbye) break;  // not to be sent twice: the 408 is all there is to give
      fail(*upstream_, request, ctx, "from", ec);
    }
    co_return co_await answer(std::move(exchange), idle, request, ctx);
  }

 private:
  asio::awaitable<std::shared_ptr<Exchange>> open(IdleConnections& idle, const Request& request,
                                                  const Ctx& ctx, bool may_reuse) const {
    while (may_reuse) {
      auto kept = idle.take(upstream_->key);
      if (!kept) break;
      if (still_open(*kept)) co_return std::make_shared<Exchange>(std::move(*kept), true);
    }
    tcp::socket socket(co_await asio::this_coro::executor);
    auto exchange = std::make_shared<Exchange>(std::move(socket), false);
    exchange->stream.expires_after(upstream_->options.connect_timeout);
    auto [ec] = co_await exchange->stream.async_connect(upstream_->endpoint, kAwait);
    if (ec) fail(*upstream_, request, ctx, "connecting to", ec);
    exchange->stream.socket().set_option(tcp::no_delay(true), ec);
    co_return exchange;
  }

  // Sends the request. A failed write is not the exchange's outcome (the answer read meanwhile
  // is): it only keeps the connection from going back to the pool.
  asio::awaitable<error_code> send(Exchange& exchange, const std::string& head,
                                   const std::string& body, Ctx& ctx, bool body_streamed) const {
    exchange.stream.expires_after(upstream_->options.response_timeout);
    if (!body_streamed) {
      const auto ec =
          co_await write_all(exchange, std::array{asio::buffer(head), asio::buffer(body)});
      exchange.body_sent = !ec;
      co_return ec;
    }
    if (auto ec = co_await write_all(exchange, asio::buffer(head))) co_return ec;
    for (;;) {
      // A refusal read meanwhile ends the wait for the client's next piece: a client that
      // pauses its upload gets the answer now, not when it sends more. One read while the
      // last piece was being written is seen here, before the next wait begins.
      using namespace asio::experimental::awaitable_operators;
      if (exchange.body_cut) co_return asio::error::operation_aborted;
      auto next = co_await (next_piece(ctx) || exchange.cut.async_wait(kAwait));
      if (next.index() == 1 || exchange.body_cut) co_return asio::error::operation_aborted;
      const NextPiece& outcome = std::get<0>(next);
      // The client's failure (it left, its body is too slow or malformed): the request's.
      if (outcome.failure) std::rethrow_exception(outcome.failure);
      const auto& piece = outcome.piece;
      if (!piece) break;
      exchange.stream.expires_after(upstream_->options.response_timeout);
      if (auto ec = co_await write_all(exchange, asio::buffer(piece->data(), piece->size())))
        co_return ec;
    }
    exchange.body_sent = true;
    co_return error_code{};
  }

  // The client's next piece, or what it threw as a value: `||` ends its wait at the first
  // operand that *succeeds*, so a throwing next() would leave it waiting for the cut until the
  // request timed out (a client that left held its handler 30 s; a slow one got a 504).
  struct NextPiece {
    std::optional<std::string_view> piece;
    std::exception_ptr failure;
  };
  static asio::awaitable<NextPiece> next_piece(Ctx& ctx) {
    try {
      co_return NextPiece{co_await ctx.body().next(), nullptr};
    } catch (...) {
      co_return NextPiece{std::nullopt, std::current_exception()};
    }
  }

  // What the gateway answers itself rather than send on.
  static void refuse_what_is_not_forwarded(const Request& request) {
    // Django (WSGI unquotes the path) reads an encoded slash as a slash, and this app's
    // router as a character of one segment: `/offload%2F` missed the native `/offload/` and
    // reached Django's, past whatever guards the native route. Apache refuses them too.
    for (std::size_t at = request.path().find('%'); at != std::string_view::npos;
         at = request.path().find('%', at + 1))
      if (iequals(request.path().substr(at, 3), "%2F"))
        throw HttpError(400, "encoded_slash",
                        "an encoded slash (%2F) in the path is not forwarded: the upstream "
                        "would read it as '/'");
    // It echoes the request, cookies and credentials included, to whatever script asks.
    if (request.method() == "TRACE")  // 501: a 405 would owe an Allow the gateway cannot know
      throw HttpError(501, "not_implemented", "TRACE is not forwarded");
  }

  // The answer's head, and whether the rest of the request's body is still wanted: not
  // after a refusal, nor when no answer will come (a paused upload must not hold the 502).
  asio::awaitable<error_code> read_head(Exchange& exchange) const {
    const error_code ec = co_await read_final_head(exchange);
    if (!exchange.body_sent && (ec || exchange.parser->get().result_int() >= 400)) {
      exchange.body_cut = true;
      exchange.stream.cancel();  // a write in progress
      exchange.cut.cancel();     // or a wait for the client's next piece
    }
    co_return ec;
  }

  // The response head, past any 1xx interim answers. Each of them restarts the response
  // timeout, so their number is bounded: an upstream sending them without end is broken.
  asio::awaitable<error_code> read_final_head(Exchange& exchange) const {
    constexpr int kMaxInterimAnswers = 16;
    for (int interim = 0;; ++interim) {
      if (interim > kMaxInterimAnswers) co_return http::error::bad_status;
      exchange.parser.emplace();
      exchange.parser->header_limit(upstream_->options.max_response_header_bytes);
      exchange.parser->body_limit(boost::none);
      exchange.stream.expires_after(upstream_->options.response_timeout);
      auto [ec, n] = co_await http::async_read_header(exchange.stream, exchange.buffer,
                                                      *exchange.parser, kAwait);
      if (ec) co_return ec;
      const unsigned status = exchange.parser->get().result_int();
      if (status == 101) co_return http::error::bad_status;  // Upgrade was not forwarded
      // Beast takes any three digits; HTTP's statuses are 100 to 599 (RFC 9110 §15). An
      // answer outside them is malformed: 502, not a wait for a final answer, nor a 500.
      if (status < 100 || status > 599) co_return http::error::bad_status;
      if (status >= 200) co_return error_code{};
      exchange.answered_interim = true;
    }
  }

  asio::awaitable<Response> answer(std::shared_ptr<Exchange> exchange, IdleConnections& idle,
                                   const Request& request, const Ctx& ctx) const {
    auto& parser = *exchange->parser;
    const auto& head = parser.get();
    Response response(static_cast<int>(head.result_int()));
    // Bytes this gateway cannot decode would reach the client as if they were the body.
    if (head.count(http::field::transfer_encoding) > 0 &&
        !iequals(trim_ows(head[http::field::transfer_encoding]), "chunked"))
      fail(*upstream_, request, ctx, "a transfer coding other than chunked from",
           http::error::bad_transfer_encoding);
    const std::string connection = connection_options(
        head, [](const auto& field) { return std::string_view(field.name_string()); },
        [](const auto& field) { return std::string_view(field.value()); });
    for (const auto& field : head) {
      const std::string_view name = field.name_string();
      const std::string_view value = field.value();
      // This server writes its own framing, Date and nosniff, and no version banner.
      if (is_hop_by_hop(name) || list_contains(connection, name) ||
          iequals(name, "Content-Length") || iequals(name, "Date") || iequals(name, "Server") ||
          iequals(name, "X-Content-Type-Options"))
        continue;
      if (iequals(name, "Content-Type"))
        response.set_content_type_verbatim(std::string(value));
      else
        response.add_header(std::string(name), std::string(value));
    }
    if (parser.is_done()) {
      finish(exchange, idle);
      co_return response;
    }
    const auto length = parser.content_length();
    if (length && *length <= upstream_->options.max_buffered_response_bytes) {
      std::string body(*length, '\0');
      parser.get().body().data = body.data();
      parser.get().body().size = body.size();
      exchange->stream.expires_after(upstream_->options.response_timeout);
      auto [ec, n] = co_await http::async_read(exchange->stream, exchange->buffer, parser, kAwait);
      if (ec) fail(*upstream_, request, ctx, "reading the body from", ec);
      response.body() = std::move(body);
      finish(exchange, idle);
      co_return response;
    }
    Response streamed =
        Response::stream(pieces(std::move(exchange), idle), std::string(), response.status());
    streamed.set_content_type_verbatim(std::string(response.content_type()));
    for (const auto& [name, value] : response.headers()) streamed.add_header(name, value);
    co_return streamed;
  }

  // A streamed body, one read at a time as the client takes it. An upstream that fails
  // midway cuts the client's answer short (the head is out already).
  BodyChunks pieces(std::shared_ptr<Exchange> exchange, IdleConnections& idle) const {
    return [self = *this, exchange, &idle]() -> asio::awaitable<std::optional<std::string>> {
      auto& parser = *exchange->parser;
      while (!parser.is_done()) {
        std::string piece(kPieceBytes, '\0');
        parser.get().body().data = piece.data();
        parser.get().body().size = piece.size();
        exchange->stream.expires_after(self.upstream_->options.response_timeout);
        // One read at a time: what arrived goes on at once (an event stream's events, a
        // progress line), not when 64 KiB have piled up.
        auto [ec, n] =
            co_await http::async_read_some(exchange->stream, exchange->buffer, parser, kAwait);
        if (ec && ec != http::error::need_buffer) throw boost::system::system_error(ec);
        piece.resize(piece.size() - parser.get().body().size);
        if (!piece.empty()) co_return piece;
      }
      self.finish(exchange, idle);
      co_return std::nullopt;
    };
  }

  // A connection whose answer was read to its end goes back to the pool, if both sides
  // keep it alive and nothing unasked for came after the answer.
  void finish(const std::shared_ptr<Exchange>& exchange, IdleConnections& idle) const {
    if (exchange->finished) return;
    exchange->finished = true;
    if (!exchange->parser->keep_alive() || exchange->buffer.size() != 0 || !exchange->body_sent)
      return;
    exchange->stream.expires_never();
    idle.give_back(upstream_->key, exchange->stream.release_socket(),
                   upstream_->options.max_idle_connections);
  }

  std::shared_ptr<Upstream> upstream_;
};

}  // namespace

Handler proxy_to(UpstreamOptions upstream) {
  return Proxy(std::make_shared<Upstream>(std::move(upstream)));
}

}  // namespace molt::web
