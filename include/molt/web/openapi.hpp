// An OpenAPI 3.1 document of an App, from its routes and what they declare, and the pages that
// serve it (FastAPI's /openapi.json and /docs):
//
//   app.get("/items", list_items, "items.list",
//           {.doc = RouteDoc("List a user's items")
//                       .required_query<std::int64_t>("user_id", "whose items")
//                       .query<std::int64_t>("limit", "1 to 500; 50 when absent")
//                       .returns<ListItemsResponse>()});
//   app.post("/items", create_item, "items.create",
//            {.doc = RouteDoc("Create an item").body<NewItem>().returns<Item>(201)});
//   molt::web::serve_openapi(app, {.title = "Items", .version = "1.0.0"});
//
// Path parameters come from the pattern (`{id:int}` is an integer); a route without a doc is
// listed with what its pattern says. Bodies and answers are described structs (their JSON
// Schema, codec/json_schema.hpp), sent as JSON or MsgPack. A route that takes parameters or a
// body answers 400 with the {"error":{...}} shape on bad input, and says so.
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "molt/codec/json_schema.hpp"
#include "molt/web/app.hpp"
#include "molt/web/form.hpp"

namespace molt::web {

namespace detail {
class OpenApiWriter;
}

// How a client proves who it is, as the document's securitySchemes describe it (OpenAPI 3.1
// §4.8.27): `{.type = "http", .scheme = "bearer"}`, or `{.type = "apiKey", .in = "header",
// .name = "X-Api-Key"}`. typed_handler.hpp's BearerToken and ApiKeyHeader declare theirs.
struct SecurityScheme {
  std::string type;           // "http" or "apiKey"
  std::string scheme;         // http: "bearer" or "basic"
  std::string in;             // apiKey: "header", "query" or "cookie"
  std::string name;           // apiKey: the header's, parameter's or cookie's name
  std::string bearer_format;  // http bearer, a hint: "JWT"
  std::string description;
  // What makes it this scheme (its type, scheme, in and name; not its words).
  std::string identity() const;
};

class RouteDoc {
 public:
  explicit RouteDoc(std::string summary = {}) : summary_(std::move(summary)) {}

  RouteDoc& description(std::string text) {
    description_ = std::move(text);
    return *this;
  }
  // Groups operations in the docs page, as FastAPI's tags.
  RouteDoc& tag(std::string name) {
    tags_.push_back(std::move(name));
    return *this;
  }
  RouteDoc& deprecated() {
    deprecated_ = true;
    return *this;
  }
  // Left out of the document (FastAPI's include_in_schema=False).
  RouteDoc& hidden() {
    hidden_ = true;
    return *this;
  }
  // The route asks for `scheme`, listed as `name` in the document's securitySchemes; a route
  // that asks for several needs all of them. std::invalid_argument for a name or scheme
  // OpenAPI would not take; one name is one scheme across the app (App refuses a route that
  // gives a name another).
  RouteDoc& security(std::string name, SecurityScheme scheme);
  // Each scheme's name and identity(), for that check.
  std::vector<std::pair<std::string, std::string>> security_identities() const;

  // A query parameter as query_as<T> reads it (absent is allowed), or every value of a
  // repeated one as a std::vector<T> (typed_handler.hpp's QueryParam<"tag", std::vector<T>>) ...
  template <typename T>
  RouteDoc& query(std::string name, std::string description = {}) {
    if constexpr (codec::traits::is_vector<T>::value) {
      static_assert(detail::is_text_value_v<typename T::value_type>,
                    "RouteDoc::query<std::vector<T>>: T is std::string, bool, a number or a "
                    "described enum");
      check_new_param(kQuery, name);
      params_.push_back({std::move(name), std::move(description), false, &schema_for<T>, kQuery});
      return *this;
    } else {
      return add_param<T>(kQuery, std::move(name), std::move(description), false);
    }
  }
  // ... and as query_required<T> reads it.
  template <typename T>
  RouteDoc& required_query(std::string name, std::string description = {}) {
    return add_param<T>(kQuery, std::move(name), std::move(description), true);
  }
  // A request header read as a T (typed_handler.hpp's HeaderParam<"X-Token", T>), optional or not.
  template <typename T>
  RouteDoc& header(std::string name, std::string description = {}) {
    return add_param<T>(kHeader, std::move(name), std::move(description), false);
  }
  template <typename T>
  RouteDoc& required_header(std::string name, std::string description = {}) {
    return add_param<T>(kHeader, std::move(name), std::move(description), true);
  }
  // A cookie read as a T (cookie(), or typed_handler.hpp's CookieParam<"session", T>).
  template <typename T>
  RouteDoc& cookie(std::string name, std::string description = {}) {
    return add_param<T>(kCookie, std::move(name), std::move(description), false);
  }
  template <typename T>
  RouteDoc& required_cookie(std::string name, std::string description = {}) {
    return add_param<T>(kCookie, std::move(name), std::move(description), true);
  }
  // Every member of T, a described struct, as a query parameter, as query_as<T>(request)
  // reads them: its type, rules and default, required unless optional, defaulted or a list.
  template <typename T>
  requires codec::traits::is_described_struct_v<T> RouteDoc& query() {
    static_assert(detail::is_query_model<T>(),
                  "RouteDoc::query<T>(): T is what query_as<T>(request) reads: members of text, "
                  "bools, numbers, described enums, optionals or std::vectors of them");
    (void)checked_schema<T>();
    boost::mp11::mp_for_each<boost::describe::describe_members<
        T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
      using M = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
      constexpr bool required = !codec::traits::keeps_default<T>(decltype(member)::name) &&
                                !codec::traits::is_optional<M>::value &&
                                !codec::traits::is_vector<M>::value;
      check_new_param(kQuery, member.name);
      params_.push_back(
          {member.name, {}, required, &member_schema_for<T, decltype(member)>, kQuery});
    });
    return *this;
  }
  // Words for a path parameter of the pattern (its type comes from the pattern) ...
  RouteDoc& path_param(std::string name, std::string description) {
    path_.push_back({std::move(name), std::move(description), true, nullptr, kPath});
    return *this;
  }
  // ... or a type for it too, when the handler reads `{id}` as a T (an integer, say).
  template <typename T>
  RouteDoc& path_param(std::string name, std::string description = {}) {
    static_assert(detail::is_text_value_v<T>,
                  "RouteDoc::path_param<T>: T is std::string, bool, a number or a described enum");
    path_.push_back({std::move(name), std::move(description), true, &schema_for<T>, kPath});
    return *this;
  }

  // A body decoded with body_as<T>: JSON or MsgPack.
  template <typename T>
  RouteDoc& body(std::string description = {}) {
    body_ = Content{kJsonAndMsgPack, std::move(description), checked_schema<T>()};
    return *this;
  }
  // A form body decoded with form_as<T> (form.hpp): urlencoded or multipart, or multipart
  // only when T has files (a file cannot be sent urlencoded).
  template <typename T>
  RouteDoc& form(std::string description = {}) {
    std::vector<std::string> types{"multipart/form-data"};
    if (!has_files<T>()) types.insert(types.begin(), "application/x-www-form-urlencoded");
    body_ = Content{std::move(types), std::move(description), checked_schema<T>()};
    return *this;
  }
  // A body of another media type, read as bytes (an upload, NDJSON lines).
  RouteDoc& raw_body(std::string media_type, std::string description = {}) {
    body_ = Content{{std::move(media_type)}, std::move(description), nullptr};
    return *this;
  }

  // An answer built with respond()/json()/msgpack() from a T.
  template <typename T>
  RouteDoc& returns(int status = 200, std::string description = {}) {
    answers_.push_back({checked_status(status),
                        Content{kJsonAndMsgPack, std::move(description), checked_schema<T>()},
                        false});
    return *this;
  }
  // An answer built with json() from a T: JSON only.
  template <typename T>
  RouteDoc& returns_json(int status = 200, std::string description = {}) {
    answers_.push_back({checked_status(status),
                        Content{{"application/json"}, std::move(description), checked_schema<T>()},
                        false});
    return *this;
  }
  // An answer of another media type (a stream, text), or with no body (a 204).
  RouteDoc& returns_raw(int status, std::string media_type, std::string description = {}) {
    answers_.push_back(
        {checked_status(status),
         Content{media_type.empty() ? std::vector<std::string>()
                                    : std::vector<std::string>{std::move(media_type)},
                 std::move(description), nullptr},
         false});
    return *this;
  }
  // An error the handler answers, in the {"error":{"code","message"}} shape of HttpError.
  RouteDoc& error(int status, std::string description) {
    answers_.push_back({checked_status(status),
                        Content{{"application/json"}, std::move(description), nullptr}, true});
    return *this;
  }

  // A typed handler's signature (typed_handler.hpp), declared in `signature`, merged into
  // this doc, the route's: the signature says what is read and answered (parameters, their
  // types and whether they are required, the body's type, the success answer), this doc adds
  // words (summary, descriptions, tags), errors and what else it declares (a parameter that
  // middleware reads). std::invalid_argument when this doc declares a success answer of
  // another status than the handler's.
  RouteDoc& merge(const RouteDoc& signature);
  // What one reader of a signature declares, added to the others': a declaration made twice
  // alike (two dependencies reading one header) is kept once; two that differ (one name, two
  // types or places) are a std::invalid_argument.
  RouteDoc& add_reader(const RouteDoc& reader);

  // RouteError when this doc describes a path parameter that `pattern` does not have. App
  // checks each route's doc as the route is added.
  void check_pattern(std::string_view method, std::string_view pattern) const;

  // For RouteOptions::doc: `.doc = RouteDoc(...)...`.
  operator std::shared_ptr<const RouteDoc>() const {
    return std::make_shared<const RouteDoc>(*this);
  }

 private:
  friend class detail::OpenApiWriter;
  using SchemaOf = boost::json::value (*)(codec::SchemaSet&);
  template <typename T>
  static boost::json::value schema_for(codec::SchemaSet& schemas) {
    return schemas.schema_of<T>();
  }
  // Whether a member of T is an UploadedFile (or an optional or vector of them).
  template <typename T>
  static constexpr bool has_files() {
    bool files = false;
    boost::mp11::mp_for_each<boost::describe::describe_members<
        T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
      using M = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
      files = files ||
              std::is_same_v<typename codec::traits::without_optional<M>::type, UploadedFile> ||
              std::is_same_v<M, std::vector<UploadedFile>>;
    });
    return files;
  }

  // schema_for<T>, once T's schema has been written: a rule that cannot be (a pattern RE2
  // refuses) fails here, where the route is declared, at startup, not at a first request.
  template <typename T>
  static SchemaOf checked_schema() {
    codec::SchemaSet probe;
    (void)probe.schema_of<T>();
    return &schema_for<T>;
  }
  template <typename T, typename D>
  static boost::json::value member_schema_for(codec::SchemaSet& schemas) {
    return schemas.member_schema<T, D>();
  }
  // Where a parameter is, OpenAPI's `in`.
  static constexpr std::string_view kQuery = "query", kHeader = "header", kCookie = "cookie",
                                    kPath = "path";
  template <typename T>
  RouteDoc& add_param(std::string_view in, std::string name, std::string description,
                      bool required) {
    static_assert(detail::is_text_value_v<T>,
                  "RouteDoc::query<T>, header<T>, cookie<T>: T is what query_as reads: "
                  "std::string, bool, a number or a described enum");
    check_new_param(in, name);
    params_.push_back({std::move(name), std::move(description), required, &schema_for<T>, in});
    return *this;
  }
  // std::invalid_argument for a name declared already in `in` (header names in any case).
  void check_new_param(std::string_view in, const std::string& name);

  // std::invalid_argument for a status outside 100-599.
  static int checked_status(int status);
  struct Param {
    std::string name;
    std::string description;
    bool required;
    SchemaOf schema;  // a path parameter's may be nullptr: its type is the pattern's
    std::string_view in;
  };
  // The parameter declared in `in` under `name` (header names in any case), or end().
  std::vector<Param>::iterator find_param(std::string_view in, std::string_view name);
  struct Content {
    std::vector<std::string> media_types;  // none: no body
    std::string description;
    SchemaOf schema;  // nullptr: the bytes of its media type
  };
  static inline const std::vector<std::string> kJsonAndMsgPack{"application/json",
                                                               "application/msgpack"};
  struct Answer {
    int status;
    Content content;
    bool error_shape;
  };

  std::string summary_;
  std::string description_;
  std::vector<std::string> tags_;
  bool deprecated_ = false;
  bool hidden_ = false;
  std::vector<Param> params_;  // query, header and cookie parameters, in the order declared
  std::vector<Param> path_;
  std::optional<Content> body_;
  std::vector<Answer> answers_;
  std::vector<std::pair<std::string, SecurityScheme>> security_;
};

struct OpenApiInfo {
  std::string title = "molt::web";
  std::string version = "0.1.0";
  std::string description;
  std::string root_path;  // as OpenApiOptions::root_path
};

// The OpenAPI 3.1 document of `app`'s routes.
boost::json::object openapi_document(const App& app, const OpenApiInfo& info);

struct OpenApiOptions {
  std::string title = "molt::web";
  std::string version = "0.1.0";
  std::string description;
  std::string json_path = "/openapi.json";
  // The Swagger UI page; "" for none.
  std::string docs_path = "/docs";
  // The path the app is served under behind a proxy that strips it ("/api"): the document
  // names it as its server, and the page asks for the document there (FastAPI's root_path).
  std::string root_path;
  // Where the page loads Swagger UI from (a copy of your own, where browsers cannot reach
  // the CDN).
  std::string swagger_ui_url = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5";
};

// Adds GET `json_path` (the document, built at its first request, when every route is in)
// and GET `docs_path` (a page that shows it), both left out of the document itself.
void serve_openapi(App& app, OpenApiOptions options = {});

}  // namespace molt::web
