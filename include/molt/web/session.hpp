// Signed values and sessions in a signed cookie (itsdangerous and Starlette's SessionMiddleware):
//
//   molt::web::Signer signer(secret_key, "email-confirm");  // HMAC-SHA256; 32 bytes or more
//   const std::string token = signer.sign("user:42");       // value, time and signature
//   std::optional<std::string> value = signer.unsign(token, std::chrono::hours(24));
//
//   app.use(molt::web::sessions({.secret_key = key}));
//   molt::web::Session& session = molt::web::session(ctx);  // in a handler
//   session.set("user_id", "42");                          // sent back signed, as a cookie
//
// A session is signed, not encrypted: the client can read what it holds (base64), and cannot
// change it. Keep secrets out of it, and the secret key out of the repository.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "molt/web/app.hpp"
#include "molt/web/cookies.hpp"

namespace molt::web {

class Signer {
 public:
  // `purpose` names what the tokens are for: a token signed for one purpose is refused for
  // any other, so that one key serves several uses (a link in an email cannot be replayed as
  // a session cookie). std::invalid_argument for a key shorter than 32 bytes.
  explicit Signer(std::string secret_key, std::string purpose = {});

  // `value`, the time it was signed and their signature, in URL- and cookie-safe characters.
  std::string sign(std::string_view value) const;
  // The value `token` was signed with, if this key signed it no longer than `max_age` ago
  // (and not in the future); nothing for anything else, tampered or expired alike.
  std::optional<std::string> unsign(std::string_view token, std::chrono::seconds max_age) const;

 private:
  std::string mac(std::string_view payload) const;
  std::string key_;
  std::string purpose_;
};

// A request's session: text values by name, read from its cookie, sent back when changed.
class Session {
 public:
  std::optional<std::string_view> get(std::string_view name) const;
  void set(std::string name, std::string value);
  void erase(std::string_view name);
  // Logs out: the cookie is deleted.
  void clear();
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }
  bool changed() const { return changed_; }

 private:
  friend struct SessionAccess;
  std::map<std::string, std::string, std::less<>> values_;
  bool changed_ = false;
};

struct SessionOptions {
  std::string secret_key;  // 32 bytes or more, from the environment or a secret store
  std::string cookie_name = "session";
  // How long a session lasts without being changed (the cookie's Max-Age, and the age the
  // signature is accepted for): 14 days, as Starlette's.
  std::chrono::seconds max_age = std::chrono::hours(24 * 14);
  std::string path = "/";
  bool https_only = false;  // the cookie's Secure
  SameSite same_site = SameSite::Lax;
};

// Reads the session cookie before the handler and sends it back signed when the handler
// changed the session (deleted when it was cleared). A cookie that is tampered with, signed
// with another key or for another purpose, or too old is an empty session. Its tokens are
// signed for the purpose "molt.web.session". std::invalid_argument for a short key or
// cookie options set_cookie would refuse (a bad name, SameSite None without https_only).
Middleware sessions(SessionOptions options);

// The request's session; std::logic_error when no sessions() middleware runs before.
Session& session(Ctx& ctx);

}  // namespace molt::web
