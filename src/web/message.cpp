#include "molt/web/message.hpp"

#include <algorithm>
#include <array>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>
#include <charconv>
#include <stdexcept>

#include "molt/codec/json.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/core/status.hpp"

namespace molt::web {

namespace {
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

void Request::reset() {
  method_ = target_ = path_ = query_ = authority_ = {};
  absolute_form_ = false;
  version_ = 11;
  headers_.clear();
  // A large body's memory goes with its request: a keep-alive connection that sent one 1 MiB
  // body and then idles (or sends small requests now and then) would hold it for ever.
  if (body_.capacity() > kKeptBodyCapacity)
    std::string().swap(body_);
  else
    body_.clear();
  keep_alive_ = true;
  body_streamed_ = false;
  https_ = false;
  client_address_.clear();
}

namespace {

// The origin-form part of an absolute-form target (`http://host/path?q`, RFC 9112 §3.2.2,
// which a server must accept): from the path on, empty when there is neither path nor query;
// nullopt when the target is not absolute.
std::optional<std::string_view> after_authority(std::string_view target) {
  std::size_t scheme = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://"))
    scheme = 7;
  else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://"))
    scheme = 8;
  else
    return std::nullopt;
  const auto end = target.find_first_of("/?", scheme);
  return end == std::string_view::npos ? target.substr(target.size()) : target.substr(end);
}

}  // namespace

void Request::set_start_line(std::string_view method, std::string_view target, int version) {
  method_ = method;
  target_ = target;
  version_ = version;
  if (const auto absolute = after_authority(target)) {
    const std::string_view origin = *absolute;
    const std::size_t scheme = target.find("//") + 2;
    authority_ =
        target.substr(scheme, static_cast<std::size_t>(origin.data() - target.data()) - scheme);
    absolute_form_ = true;
    // `http://host` and `http://host?q` have the path "/": a view of the scheme's own slash,
    // so that it moves with the buffer like every other view.
    if (origin.empty() || origin.front() == '?') {
      path_ = target.substr(target.find('/'), 1);
      query_ = origin.empty() ? std::string_view() : origin.substr(1);
      if (origin.empty()) target_ = path_;
      return;
    }
    target_ = origin;
    target = origin;
  }
  const auto mark = target.find('?');
  path_ = target.substr(0, mark);
  query_ = mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1);
}

void Request::rebase(std::ptrdiff_t delta) {
  const auto move = [delta](std::string_view& view) {
    if (view.data() != nullptr) view = std::string_view(view.data() + delta, view.size());
  };
  move(method_);
  move(target_);
  move(path_);
  move(query_);
  move(authority_);
  for (Header& h : headers_) {
    move(h.name);
    move(h.value);
  }
}

std::string_view Request::host() const {
  if (absolute_form_) return authority_;
  return header("Host").value_or(std::string_view());
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const Header& h : headers_)
    if (iequals(h.name, name)) return h.value;
  return std::nullopt;
}

std::optional<std::string_view> Request::header_list(std::string_view name,
                                                     std::string& storage) const {
  std::optional<std::string_view> list;
  for (const Header& h : headers_) {
    if (!iequals(h.name, name)) continue;
    if (list) {
      if (storage.empty()) storage = *list;
      storage.append(", ").append(h.value);
      list = storage;
    } else {
      list = h.value;
    }
  }
  return list;
}

namespace {
// Calls `take(value)` for each value of the query parameter `name`, decoded, in order, until
// it returns false. A value that is not valid percent-encoding or not UTF-8 is a 400.
template <class Take>
void each_query_value(std::string_view query, std::string_view name, Take take) {
  // Split by hand: Boost.URL 1.81's parse_query reads past the end of a view that is not
  // the end of its buffer. Each piece is still validated and decoded by Boost.URL.
  boost::urls::encoding_opts form;
  form.space_as_plus = true;  // query strings from HTML forms write spaces as '+'
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = boost::urls::make_pct_string_view(pair.substr(0, eq));
    if (key.has_error() || key->decode(form) != name) continue;
    if (eq == std::string_view::npos) {
      if (!take(std::string())) return;
      continue;
    }
    const auto value = boost::urls::make_pct_string_view(pair.substr(eq + 1));
    if (value.has_error())
      throw core::InvalidInput("query parameter '" + std::string(name) +
                               "' is not valid percent-encoding");
    std::string decoded = value->decode(form);
    if (!codec::is_valid_utf8(decoded))
      throw core::InvalidInput("query parameter '" + std::string(name) + "' is not UTF-8 text");
    if (!take(std::move(decoded))) return;
  }
}
}  // namespace

// The last of a repeated parameter, as Django's request.GET and Starlette read it: a molt::web
// route standing in for a Django view (the gateway) reads the request as the view would.
std::optional<std::string> Request::query_param(std::string_view name) const {
  std::optional<std::string> last;
  each_query_value(query_, name, [&](std::string value) {
    last = std::move(value);
    return true;
  });
  return last;
}

std::vector<std::string> Request::query_params(std::string_view name) const {
  std::vector<std::string> all;
  each_query_value(query_, name, [&](std::string value) {
    all.push_back(std::move(value));
    return true;
  });
  return all;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
  return error(status, code, message, {});
}

Response Response::error(int status, std::string_view code, std::string_view message,
                         std::string_view field) {
  return error(status, code, message, field, {});
}

Response Response::error(int status, std::string_view code, std::string_view message,
                         std::string_view field, const std::vector<FieldProblem>& problems) {
  std::string body = "{\"error\":{\"code\":";
  codec::write_json_string(body, code);
  body += ",\"message\":";
  codec::write_json_string(body, message);  // it may quote the request's own bytes
  if (!field.empty()) {
    body += ",\"field\":";
    codec::write_json_string(body, field);
  }
  if (!problems.empty()) {
    body += ",\"errors\":[";
    for (const FieldProblem& problem : problems) {
      if (body.back() == '}') body += ',';
      body += "{\"field\":";
      codec::write_json_string(body, problem.field);
      body += ",\"message\":";
      codec::write_json_string(body, problem.message);
      body += '}';
    }
    body += ']';
  }
  body += "}}";
  return {status, std::move(body), "application/json"};
}

namespace {
// RFC 9110 tchar, as a table: set_header runs on every answer that carries a header.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}();

// A CR or LF from user input would let it write its own headers (response splitting).
void check_header(const std::string& name, const std::string& value) {
  const auto is_token_char = [](char c) { return kTokenChars[static_cast<unsigned char>(c)]; };
  const auto is_line_break = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
    throw std::invalid_argument("response header name is not a token: " + name);
  if (std::any_of(value.begin(), value.end(), is_line_break))
    throw std::invalid_argument("response header '" + name + "' has a CR, LF or NUL in its value");
}

}  // namespace

namespace detail {
void check_content_type(std::string_view content_type) {
  if (content_type.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    throw std::invalid_argument("the response's content type has a CR, LF or NUL");
}
}  // namespace detail

void Response::set_header(std::string name, std::string value) {
  check_header(name, value);
  for (auto& [existing, current] : headers_) {
    if (iequals(existing, name)) {
      current = std::move(value);
      return;
    }
  }
  headers_.emplace_back(std::move(name), std::move(value));
}

void Response::add_header(std::string name, std::string value) {
  check_header(name, value);
  headers_.emplace_back(std::move(name), std::move(value));
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string_view next_list_element(std::string_view& list, char separator) {
  const std::size_t end = list.find(separator);
  const std::string_view element = trim_ows(list.substr(0, end));
  list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
  return element;
}

double list_quality(std::string_view params) {
  double quality = 1;
  while (!params.empty()) {
    const std::string_view param = next_list_element(params, ';');
    if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
      double parsed = 0;
      const auto [end, ec] = std::from_chars(param.data() + 2, param.data() + param.size(), parsed);
      const bool valid =
          ec == std::errc() && end == param.data() + param.size() && parsed >= 0 && parsed <= 1;
      quality = valid ? parsed : 0;
    }
  }
  return quality;
}

bool list_contains(std::string_view list, std::string_view token) {
  while (!list.empty())
    if (iequals(next_list_element(list), token)) return true;
  return false;
}

void Response::set_stream_keepalive(std::chrono::milliseconds interval, std::string piece) {
  if (interval.count() > 0 && piece.empty())
    throw std::invalid_argument("a stream's keep-alive piece must not be empty");
  // Held by pointer: most answers have none, and an answer is moved several times on its way.
  keepalive_ =
      interval.count() > 0
          ? std::make_shared<const StreamKeepalive>(StreamKeepalive{interval, std::move(piece)})
          : nullptr;
}

void Response::add_vary(std::string_view field) {
  for (auto& [name, value] : headers_) {
    if (!iequals(name, "Vary")) continue;
    if (list_contains(value, field) || list_contains(value, "*")) return;
    value.append(", ").append(field);
    return;
  }
  set_header("Vary", std::string(field));
}

std::optional<std::string_view> Response::header(std::string_view name) const {
  for (const auto& [existing, value] : headers_)
    if (iequals(existing, name)) return std::string_view(value);
  return std::nullopt;
}

}  // namespace molt::web
