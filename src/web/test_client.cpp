#include "molt/web/test_client.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>

#include "body_stream.hpp"
#include "exchange.hpp"
#include "http_date.hpp"
#include "request_reader.hpp"
#include "task_group.hpp"

namespace molt::web {

std::optional<std::string> TestResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (iequals(key, name)) return value;
  return std::nullopt;
}

namespace {

// Collects a streamed body into `out`, framed as the server frames it. False if it failed.
boost::asio::awaitable<bool> drain_stream(const Response& response, const Request& request,
                                          std::string& out) {
  detail::StreamFraming framing(request, response);
  try {
    while (auto piece = co_await response.chunks()())
      if (!framing.piece(out, *piece)) co_return false;
  } catch (const std::exception& e) {
    detail::log_stream_failure(request, e.what());
    co_return false;
  }
  co_return framing.end(out);
}

// One request through the app, as a connection serves it: the Ctx lives until the whole
// answer is written, streamed body included (its producer may use the Ctx). With `body` (a
// streamed request body), what the handler left of it is dropped after the answer if little;
// if not, the connection closes after the answer. Returns whether it may carry another request.
boost::asio::awaitable<bool> serve(const App& app, const Request& request, core::CancelToken token,
                                   detail::TaskGroup* tasks, detail::BodyStream* body,
                                   std::string& out) {
  Ctx ctx(app, std::move(token), tasks, body);
  const Response response = co_await app.handle(request, ctx);
  using Rest = detail::BodyStream::Rest;
  const Rest rest = body != nullptr ? body->settle(detail::kMaxDrainBytes) : Rest::None;
  const bool keep_alive = detail::write_answer(out, request, response, rest == Rest::Abandoned);
  if (detail::sends_stream(request, response) && !co_await drain_stream(response, request, out))
    co_return false;
  if (rest == Rest::Little && !co_await body->drain()) co_return false;
  co_return keep_alive;
}

// One connection's input, handed to the reader in reads of at most `read_size` bytes.
struct Input {
  std::string_view bytes;
  std::size_t read_size;
  std::size_t fed = 0;

  bool done() const { return fed == bytes.size(); }
  void feed(std::span<char> space, detail::RequestReader& reader) {
    const std::size_t n = std::min({space.size(), bytes.size() - fed, read_size});
    std::memcpy(space.data(), bytes.data() + fed, n);
    fed += n;
    reader.commit(n);
  }
};

// A streamed body, pulled from the input as the handler asks.
class InputBody final : public detail::BodyStream {
 public:
  InputBody(detail::RequestReader& reader, Input& input, std::string& out)
      : BodyStream(reader), input_(input), out_(out) {}

 private:
  boost::asio::awaitable<void> send_continue() override {
    out_ += detail::kContinue;
    co_return;
  }
  boost::asio::awaitable<bool> receive() override {
    if (input_.done()) co_return false;
    input_.feed(reader().body_read_space(), reader());
    co_return true;
  }
  Input& input_;
  std::string& out_;
};

}  // namespace

TestClient::TestClient(App& app, Limits limits)
    : app_(app), limits_(limits), read_size_(std::numeric_limits<std::size_t>::max()) {
  app_.freeze();
}

std::string TestClient::raw(std::string_view bytes) {
  detail::RequestReader reader(limits_, &app_);
  reader.request().set_peer_address(peer_address_);
  std::string out;
  boost::asio::io_context io;
  // Spawned tasks run on the same io_context: each run() below finishes them too.
  detail::TaskGroup tasks(io.get_executor(), limits_.max_background_tasks);
  // Input arrives in the pieces the reader asks for, as from a socket.
  Input input{bytes, read_size_};
  InputBody body(reader, input, out);
  bool closed = false;
  while (true) {
    auto state = reader.parse();
    if (state == detail::RequestReader::State::HeaderReady) {
      if (reader.expects_continue()) out += detail::kContinue;
      continue;
    }
    if (state == detail::RequestReader::State::NeedMore) {
      if (input.done()) {
        if (closed) break;
        closed = true;
        state = reader.input_closed();
        if (state == detail::RequestReader::State::NeedMore) break;
      } else {
        input.feed(reader.read_space(), reader);
        continue;
      }
    }
    if (state == detail::RequestReader::State::Failed) {
      detail::write_read_error(out, reader.error());
      break;
    }
    core::CancelSource source;
    const bool streamed = reader.request().body_streamed();
    if (streamed) body.begin();
    auto done = boost::asio::co_spawn(
        io, serve(app_, reader.request(), source.token(), &tasks, streamed ? &body : nullptr, out),
        boost::asio::use_future);
    io.run();
    io.restart();
    // Not kept alive (a body left unread, a stream cut short): the rest of the input is never
    // read, as a server closes such a connection.
    if (!done.get()) break;
    reader.start_next();
  }
  return out;
}

TestResponse TestClient::request(std::string_view method, std::string_view target,
                                 std::string_view body, const Headers& headers) {
  std::string bytes;
  bytes.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: testserver\r\n");
  bool has_length = false;
  bool has_cookie = false;
  for (const auto& [name, value] : headers) {
    bytes.append(name).append(": ").append(value).append("\r\n");
    has_length |= iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding");
    has_cookie |= iequals(name, "Cookie");
  }
  if (const std::string cookie = cookie_header(target); !has_cookie && !cookie.empty())
    bytes.append("Cookie: ").append(cookie).append("\r\n");
  if (!body.empty() && !has_length)
    bytes.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  bytes.append("\r\n").append(body);
  const auto responses = parse_responses(raw(bytes), method == "HEAD");
  if (responses.empty()) throw std::runtime_error("TestClient: the server answered nothing");
  keep_cookies(responses.back(), target);
  return responses.back();
}

namespace {

// The path of a request target, without its query (nor the scheme and host of an absolute
// one).
std::string_view target_path(std::string_view target) {
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (target.starts_with(scheme)) {
      const std::size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target.substr(0, target.find('?'));
}

// RFC 6265 §5.1.4: `path` is within the cookie's `cookie_path`.
bool path_matches(std::string_view path, std::string_view cookie_path) {
  if (!path.starts_with(cookie_path)) return false;
  return path.size() == cookie_path.size() || cookie_path.ends_with('/') ||
         path[cookie_path.size()] == '/';
}

// RFC 6265 §5.1.4's default path: the request path up to its last '/'.
std::string default_cookie_path(std::string_view target) {
  const std::string_view path = target_path(target);
  const std::size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string_view::npos ? "/" : std::string(path.substr(0, slash));
}

}  // namespace

void TestClient::set_cookie(std::string name, std::string value, std::string path, bool secure) {
  for (StoredCookie& c : cookies_) {
    if (c.name == name && c.path == path) {  // replaced where it was, as a browser keeps it
      c.value = std::move(value);
      c.secure = secure;
      return;
    }
  }
  cookies_.push_back({std::move(name), std::move(value), std::move(path), secure});
}

void TestClient::keep_cookies(const TestResponse& response, std::string_view target) {
  for (const auto& [header, line] : response.headers) {
    if (!iequals(header, "Set-Cookie")) continue;
    std::string_view rest = line;
    const std::string_view pair = next_list_element(rest, ';');
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos) continue;
    std::string path = default_cookie_path(target);
    bool expired = false;
    bool secure = false;
    std::optional<bool> expired_by_max_age;
    while (!rest.empty()) {
      const std::string_view attribute = next_list_element(rest, ';');
      const std::size_t at = attribute.find('=');
      const std::string_view key = trim_ows(attribute.substr(0, at));
      const std::string_view value =
          at == std::string_view::npos ? std::string_view() : trim_ows(attribute.substr(at + 1));
      if (iequals(key, "Path") && value.starts_with('/')) path = std::string(value);
      if (iequals(key, "Secure")) secure = true;
      if (iequals(key, "Max-Age") && !value.empty())
        expired_by_max_age =
            value.front() == '-' || value.find_first_not_of('0') == std::string_view::npos;
      if (iequals(key, "Expires"))
        if (const auto when = detail::parse_http_date(value)) expired = *when <= std::time(nullptr);
    }
    expired = expired_by_max_age.value_or(expired);  // Max-Age wins over Expires
    const std::string name(trim_ows(pair.substr(0, equals)));
    if (expired)
      std::erase_if(cookies_,
                    [&](const StoredCookie& c) { return c.name == name && c.path == path; });
    else
      set_cookie(name, std::string(trim_ows(pair.substr(equals + 1))), std::move(path), secure);
  }
}

std::string TestClient::cookie_header(std::string_view target) const {
  std::string header;
  const std::string_view path = target_path(target);
  // The longer paths first, as a browser orders them (RFC 6265 §5.4), so that cookie() reads
  // the one a browser would send first. Secure cookies stay home: the client speaks plain HTTP.
  std::vector<const StoredCookie*> sent;
  for (const StoredCookie& c : cookies_)
    if (!c.secure && path_matches(path, c.path)) sent.push_back(&c);
  std::stable_sort(sent.begin(), sent.end(), [](const StoredCookie* a, const StoredCookie* b) {
    return a->path.size() > b->path.size();
  });
  for (const StoredCookie* c : sent) {
    if (!header.empty()) header += "; ";
    header.append(c->name).append("=").append(c->value);
  }
  return header;
}

namespace {

// `text` as a form encodes it: unreserved characters as they are, ' ' as '+', the rest %XX.
void append_form_encoded(std::string& out, std::string_view text) {
  constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '*') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

}  // namespace

TestResponse TestClient::post_form(std::string_view target, const FormFields& fields,
                                   Headers headers) {
  std::string body;
  for (const auto& [name, value] : fields) {
    if (!body.empty()) body += '&';
    append_form_encoded(body, name);
    body += '=';
    append_form_encoded(body, value);
  }
  headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  return request("POST", target, body, headers);
}

TestResponse TestClient::post_multipart(std::string_view target, const FormFields& fields,
                                        const std::vector<FormFile>& files, Headers headers) {
  // A boundary no test data holds, as a browser picks one.
  const std::string boundary = "----molt-test-client-7MA4YWxkTrZu0gW";
  const auto quoted = [](std::string_view text) {  // '"' as a browser writes it
    std::string out;
    for (const char c : text) out += c == '"' ? std::string("%22") : std::string(1, c);
    return out;
  };
  std::string body;
  for (const auto& [name, value] : fields)
    body.append("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + quoted(name) +
                "\"\r\n\r\n" + value + "\r\n");
  for (const FormFile& file : files)
    body.append("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" +
                quoted(file.field) + "\"; filename=\"" + quoted(file.filename) +
                "\"\r\nContent-Type: " + file.content_type + "\r\n\r\n" + file.data + "\r\n");
  body.append("--" + boundary + "--\r\n");
  headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
  return request("POST", target, body, headers);
}

TestResponse TestClient::get(std::string_view target, const Headers& headers) {
  return request("GET", target, {}, headers);
}

std::vector<TestResponse> TestClient::parse_responses(std::string_view bytes, bool head) {
  namespace http = boost::beast::http;
  std::vector<TestResponse> responses;
  while (!bytes.empty()) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
    if (ec || !parser.is_done())
      throw std::runtime_error("TestClient: unreadable answer: " + ec.message());
    bytes.remove_prefix(used);
    const auto& message = parser.get();
    if (message.result_int() == 100) continue;
    TestResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message)
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    response.body = message.body();
    responses.push_back(std::move(response));
  }
  return responses;
}

}  // namespace molt::web
