#include "molt/web/session.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <ctime>
#include <stdexcept>

#include "molt/codec/base64.hpp"
#include "molt/codec/json.hpp"

namespace molt::web {

namespace {

std::int64_t now_seconds() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace

Signer::Signer(std::string secret_key, std::string purpose)
    : key_(std::move(secret_key)), purpose_(std::move(purpose)) {
  if (key_.size() < 32)
    throw std::invalid_argument("Signer: a secret key has 32 bytes or more (" +
                                std::to_string(key_.size()) + " given)");
}

// Over the purpose, a NUL, then the payload: the same payload signed for two purposes has two
// signatures.
std::string Signer::mac(std::string_view payload) const {
  std::string input = purpose_;
  input += '\0';
  input += payload;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest,
           &size) == nullptr)
    throw std::runtime_error("Signer: HMAC-SHA256 failed");
  return codec::base64url(std::string_view(reinterpret_cast<const char*>(digest), size));
}

// "<value in base64url>.<seconds since 1970>.<HMAC-SHA256 of both in base64url>"
std::string Signer::sign(std::string_view value) const {
  std::string payload = codec::base64url(value);
  payload += '.';
  payload += std::to_string(now_seconds());
  return payload + "." + mac(payload);
}

std::optional<std::string> Signer::unsign(std::string_view token,
                                          std::chrono::seconds max_age) const {
  const std::size_t last_dot = token.rfind('.');
  if (last_dot == std::string_view::npos) return std::nullopt;
  const std::string_view payload = token.substr(0, last_dot);
  const std::string expected = mac(payload);
  const std::string_view given = token.substr(last_dot + 1);
  // Compared in constant time: how long a wrong signature takes says nothing of the right one.
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0)
    return std::nullopt;
  const std::size_t dot = payload.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::int64_t signed_at = 0;
  const std::string_view time = payload.substr(dot + 1);
  const auto [end, ec] = std::from_chars(time.data(), time.data() + time.size(), signed_at);
  if (ec != std::errc() || end != time.data() + time.size()) return std::nullopt;
  const std::int64_t age = now_seconds() - signed_at;
  if (age < -60 || age > max_age.count()) return std::nullopt;  // a minute of clock skew
  return codec::decode_base64url(payload.substr(0, dot));
}

std::optional<std::string_view> Session::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

void Session::set(std::string name, std::string value) {
  values_[std::move(name)] = std::move(value);
  changed_ = true;
}

void Session::erase(std::string_view name) {
  const auto it = values_.find(name);
  if (it == values_.end()) return;
  values_.erase(it);
  changed_ = true;
}

void Session::clear() {
  changed_ = changed_ || !values_.empty();
  values_.clear();
}

struct SessionAccess {
  static void load(Session& session, std::map<std::string, std::string, std::less<>> values) {
    session.values_ = std::move(values);
  }
};

Middleware sessions(SessionOptions options) {
  auto signer = std::make_shared<const Signer>(options.secret_key, "molt.web.session");
  options.secret_key.clear();  // the key stays in the signer alone, not in the options kept
  // Cookie options that set_cookie would refuse fail here, at startup, not at every request.
  Response trial;
  set_cookie(trial, options.cookie_name, "x",
             {.path = options.path, .secure = options.https_only, .same_site = options.same_site});
  // Browsers keep a cookie of up to 4096 bytes, name and attributes included.
  constexpr std::size_t kMostCookieValue = 4000;
  return [signer, options](const Request& request, Ctx& ctx,
                           Next next) -> boost::asio::awaitable<Response> {
    Session loaded;
    const auto sent = cookie(request, options.cookie_name);
    if (sent) {
      if (const auto text = signer->unsign(*sent, options.max_age)) {
        try {
          SessionAccess::load(
              loaded, codec::decode_json<std::map<std::string, std::string, std::less<>>>(*text));
        } catch (const core::InvalidInput&) {
          // Signed for sessions by this key, yet not one (a format of an older version): none.
        }
      }
    }
    ctx.set(std::move(loaded));
    Response response = co_await next();
    const Session& after = *ctx.get<Session>();
    if (!after.changed()) co_return response;
    const CookieOptions cookie_options{.max_age = options.max_age,
                                       .path = options.path,
                                       .secure = options.https_only,
                                       .http_only = true,
                                       .same_site = options.same_site};
    if (after.values().empty()) {
      if (sent) delete_cookie(response, options.cookie_name, cookie_options);
      co_return response;
    }
    const std::string value = signer->sign(codec::to_json(after.values()));
    if (value.size() > kMostCookieValue)
      throw std::length_error("the session is " + std::to_string(value.size()) +
                              " bytes signed: browsers drop a cookie over 4 KiB");
    set_cookie(response, options.cookie_name, value, cookie_options);
    co_return response;
  };
}

Session& session(Ctx& ctx) {
  Session* found = ctx.get<Session>();
  if (found == nullptr)
    throw std::logic_error("session(ctx): no sessions() middleware runs before this handler");
  return *found;
}

}  // namespace molt::web
