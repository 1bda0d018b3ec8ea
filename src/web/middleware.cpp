#include "molt/web/middleware.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <random>

#include "molt/codec/json.hpp"
#include "molt/web/websocket.hpp"

namespace molt::web {
namespace {

bool is_sane_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::uint64_t random_word() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

// SplitMix64's finalizer: a counter's successive values come out scattered.
std::uint64_t scatter(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// 128 random-looking bits as 32 hex digits: a per-thread random prefix, and a per-thread
// random start plus a counter, scattered; so making an id costs no system call and no lock.
// Unique, not secret: one id tells a patient observer the next (use no id as a token).
std::string fresh_request_id() {
  thread_local const std::uint64_t prefix = random_word();
  thread_local std::uint64_t counter = random_word();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  std::uint64_t words[2] = {prefix, scatter(++counter)};
  for (int w = 0; w < 2; ++w)
    for (int i = 0; i < 16; ++i) id[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xF];
  return id;
}

std::string join(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

}  // namespace

Middleware request_id() {
  return [](const Request& request, Ctx& ctx, Next next) -> boost::asio::awaitable<Response> {
    const auto given = request.header("X-Request-Id");
    std::string id = given && is_sane_request_id(*given) ? std::string(*given) : fresh_request_id();
    ctx.set(RequestId{id});
    Response response = co_await next();
    response.set_header("X-Request-Id", std::move(id));
    co_return response;
  };
}

namespace {

// One access-log line. `stream`: how a streamed answer ended: "complete"; the reason the
// request was stopped ("disconnected": the client left; "timeout"; "shutdown"); "failed" when
// its producer threw on its own; "abandoned" when it was dropped unfinished for no reason the
// request's token knows. Empty for a whole answer.
// `close_code`: how a WebSocket closed (0 for other requests).
std::string access_line(std::string_view method, std::string_view path, int status,
                        std::chrono::steady_clock::duration took, std::size_t bytes,
                        const std::string* request_id, std::string_view client,
                        std::string_view stream, int close_code = 0) {
  std::string line = "{\"method\":";
  codec::write_json_string(line, method);
  line += ",\"path\":";
  codec::write_json_string(line, path);
  line += ",\"status\":" + std::to_string(status);
  line += ",\"duration_us\":" +
          std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  line += ",\"bytes\":" + std::to_string(bytes);
  if (!stream.empty()) line.append(",\"stream\":\"").append(stream).append("\"");
  if (close_code != 0) line += ",\"close_code\":" + std::to_string(close_code);
  if (!client.empty()) {  // the peer's address (none without a socket, as in the TestClient)
    line += ",\"client\":";
    codec::write_json_string(line, client);
  }
  if (request_id != nullptr) {
    line += ",\"request_id\":";
    codec::write_json_string(line, *request_id);
  }
  line += "}\n";
  return line;
}

// A streamed answer's line, written when the stream ends however it ends: the handler has
// returned long before, with none of the stream's bytes.
class StreamLog {
 public:
  StreamLog(std::function<void(std::string_view)> sink, const Request& request, int status,
            std::chrono::steady_clock::time_point start, const RequestId* id,
            core::CancelToken token)
      : sink_(std::move(sink)),
        token_(std::move(token)),
        method_(request.method()),
        path_(request.path()),
        client_(request.remote_address()),
        status_(status),
        start_(start),
        request_id_(id ? std::optional<std::string>(id->value) : std::nullopt) {}
  StreamLog(const StreamLog&) = delete;
  StreamLog& operator=(const StreamLog&) = delete;
  ~StreamLog() {
    try {
      end("abandoned");
    } catch (...) {  // a log line is not worth a crash
    }
  }

  void add(std::size_t bytes) { bytes_ += bytes; }
  // `how`, unless the request was stopped: then why.
  void end(std::string_view how) {
    if (std::exchange(ended_, true)) return;
    if (token_.cancelled()) how = core::to_string(token_.reason());
    sink_(access_line(method_, path_, status_, std::chrono::steady_clock::now() - start_, bytes_,
                      request_id_ ? &*request_id_ : nullptr, client_, how));
  }

 private:
  std::function<void(std::string_view)> sink_;
  core::CancelToken token_;
  std::string method_;
  std::string path_;
  std::string client_;
  int status_;
  std::chrono::steady_clock::time_point start_;
  std::optional<std::string> request_id_;
  std::size_t bytes_ = 0;
  bool ended_ = false;
};

}  // namespace

Middleware access_log(std::function<void(std::string_view)> sink) {
  if (!sink) {
    sink = [](std::string_view line) {
      [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
    };
  }
  return [sink = std::move(sink)](const Request& request, Ctx& ctx,
                                  Next next) -> boost::asio::awaitable<Response> {
    const auto start = std::chrono::steady_clock::now();
    Response response = co_await next();
    const RequestId* id = ctx.get<RequestId>();
    if (WebSocketUpgrade* upgrade = ctx.websocket_upgrade();
        upgrade != nullptr && response.status() == 101) [[unlikely]] {
      // A WebSocket's line comes when its session ends: 101 and how it closed, or the
      // status that refused it.
      upgrade->session = [inner = std::move(upgrade->session), sink, &request, start,
                          request_id = id ? std::optional<std::string>(id->value) : std::nullopt](
                             WebSocket& socket) -> boost::asio::awaitable<void> {
        co_await inner(socket);
        const auto closed = socket.close_status();
        sink(access_line(request.method(), request.path(),
                         socket.accepted() ? 101 : socket.refusal_status().value_or(403),
                         std::chrono::steady_clock::now() - start, 0,
                         request_id ? &*request_id : nullptr, request.remote_address(), {},
                         closed ? closed->code() : 0));
      };
      co_return response;
    }
    if (response.streaming() && request.method() != "HEAD") {  // HEAD sends no stream
      auto log =
          std::make_shared<StreamLog>(sink, request, response.status(), start, id, ctx.token());
      response.set_chunks(
          [inner = response.chunks(), log]() -> boost::asio::awaitable<std::optional<std::string>> {
            std::optional<std::string> piece;
            try {
              piece = co_await inner();
            } catch (...) {
              log->end("failed");
              throw;
            }
            if (piece)
              log->add(piece->size());
            else
              log->end("complete");
            co_return piece;
          });
      co_return response;
    }
    // The body bytes sent: none for HEAD (as nginx logs it), whatever the GET would send.
    const std::size_t sent = request.method() == "HEAD" ? 0 : response.body().size();
    sink(access_line(request.method(), request.path(), response.status(),
                     std::chrono::steady_clock::now() - start, sent, id ? &id->value : nullptr,
                     request.remote_address(), {}));
    co_return response;
  };
}

namespace {
constexpr std::string_view kSafelistedHeaders[] = {"Accept", "Accept-Language", "Content-Language",
                                                   "Content-Type"};

bool lists(const std::vector<std::string>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// How cors() reads its options, worked out once.
struct CorsPolicy {
  explicit CorsPolicy(CorsOptions given)
      : options(std::move(given)),
        any_origin(lists(options.allowed_origins, "*")),
        any_method(lists(options.allowed_methods, "*")),
        any_header(lists(options.allowed_headers, "*")),
        methods(join(options.allowed_methods)),
        exposed(join(options.expose_headers)),
        max_age(std::to_string(options.max_age.count())) {
    if (any_origin && options.allow_credentials)
      throw std::invalid_argument(
          "cors: a wildcard origin cannot be combined with credentials (list the origins)");
    // The answer names the safelisted headers too: a browser checks Content-Type against
    // it when the type is not a form's (application/json), safelisted or not.
    std::vector<std::string> named(std::begin(kSafelistedHeaders), std::end(kSafelistedHeaders));
    for (const std::string& header : options.allowed_headers)
      if (header != "*" &&
          std::none_of(named.begin(), named.end(),
                       [&header](std::string_view seen) { return iequals(seen, header); }))
        named.push_back(header);
    headers = join(named);
  }

  bool method_allowed(std::string_view method) const {
    return any_method || lists(options.allowed_methods, method);
  }
  bool header_allowed(std::string_view name) const {
    const auto named = [name](std::string_view allowed) { return iequals(name, allowed); };
    return any_header ||
           std::any_of(std::begin(kSafelistedHeaders), std::end(kSafelistedHeaders), named) ||
           std::any_of(options.allowed_headers.begin(), options.allowed_headers.end(), named);
  }

  // The parts of a preflight that are not allowed ("origin, method"), or "".
  std::string refused_by(bool origin_allowed, const Request& request) const {
    std::string refused;
    const auto add = [&refused](std::string_view part) {
      refused.append(refused.empty() ? "" : ", ").append(part);
    };
    if (!origin_allowed) add("origin");
    if (!method_allowed(request.header("Access-Control-Request-Method").value_or("")))
      add("method");
    std::string_view asked = request.header("Access-Control-Request-Headers").value_or("");
    while (!asked.empty()) {
      const std::string_view name = trim_ows(next_list_element(asked));
      if (!name.empty() && !header_allowed(name)) {
        add("headers");
        break;
      }
    }
    return refused;
  }

  CorsOptions options;
  bool any_origin, any_method, any_header;
  std::string methods, exposed, max_age, headers;
};
}  // namespace

Middleware cors(CorsOptions options) {
  auto policy = std::make_shared<const CorsPolicy>(std::move(options));
  return [policy](const Request& request, Ctx&, Next next) -> boost::asio::awaitable<Response> {
    const CorsPolicy& p = *policy;
    const auto origin = request.header("Origin");
    const bool allowed = origin && (p.any_origin || lists(p.options.allowed_origins, *origin));
    const auto mark = [&](Response& response) {
      response.add_vary("Origin");
      if (!allowed) return;
      response.set_header("Access-Control-Allow-Origin", p.any_origin ? "*" : std::string(*origin));
      if (p.options.allow_credentials)
        response.set_header("Access-Control-Allow-Credentials", "true");
    };
    if (request.method() == "OPTIONS" && origin &&
        request.header("Access-Control-Request-Method")) {
      // What the preflight asks that is not allowed is refused with a 400 that says so, as
      // Starlette answers it (the browser would block it either way; this tells the developer).
      if (const std::string refused = p.refused_by(allowed, request); !refused.empty()) {
        Response refusal = Response::error(400, "cors_refused", "disallowed CORS " + refused);
        mark(refusal);
        co_return refusal;
      }
      Response preflight(204);
      mark(preflight);
      // With "*" the answer names what was asked: a literal "*" means nothing to a browser
      // once credentials are allowed.
      preflight.set_header(
          "Access-Control-Allow-Methods",
          p.any_method ? std::string(*request.header("Access-Control-Request-Method")) : p.methods);
      const auto asked_headers = request.header("Access-Control-Request-Headers");
      preflight.set_header("Access-Control-Allow-Headers",
                           p.any_header && asked_headers ? std::string(*asked_headers) : p.headers);
      preflight.set_header("Access-Control-Max-Age", p.max_age);
      if (p.any_method || p.any_header) {
        preflight.add_vary("Access-Control-Request-Method");
        preflight.add_vary("Access-Control-Request-Headers");
      }
      co_return preflight;
    }
    Response response = co_await next();
    if (origin) {
      mark(response);
      if (allowed && !p.exposed.empty())
        response.set_header("Access-Control-Expose-Headers", p.exposed);
    } else if (!p.any_origin) {
      response.add_vary("Origin");  // a cache must not give this copy to a cross-origin client
    }
    co_return response;
  };
}

Middleware server_timing() {
  return [](const Request&, Ctx&, Next next) -> boost::asio::awaitable<Response> {
    const auto start = std::chrono::steady_clock::now();
    Response response = co_await next();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    char value[48];
    const int n = std::snprintf(value, sizeof(value), "app;dur=%.3f", ms);
    response.set_header("Server-Timing", std::string(value, static_cast<std::size_t>(n)));
    co_return response;
  };
}

}  // namespace molt::web
