#include "molt/web/openapi.hpp"

#include <algorithm>
#include <boost/beast/http/status.hpp>
#include <boost/describe.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>

#include "molt/codec/json.hpp"

namespace molt::web {
namespace detail {

// The shape of every error molt::web answers (Response::error), for the document.
struct FieldError {
  std::string field;
  std::string message;
};
BOOST_DESCRIBE_STRUCT(FieldError, (), (field, message))
struct ErrorDetail {
  std::string code;
  std::string message;
  std::optional<std::string> field;  // the input that was wrong: "body.title", "query.limit"
  std::optional<std::vector<FieldError>> errors;  // each input that was wrong, when several were
};
BOOST_DESCRIBE_STRUCT(ErrorDetail, (), (code, message, field, errors))
struct ErrorAnswer {
  ErrorDetail error;
};
BOOST_DESCRIBE_STRUCT(ErrorAnswer, (), (error))

namespace {

namespace json = boost::json;

// The operations an OpenAPI 3.1 path item has room for; a route of another method is left out.
std::optional<std::string> operation_key(std::string_view method) {
  for (const std::string_view key :
       {"get", "put", "post", "delete", "patch", "options", "head", "trace"}) {
    if (method.size() == key.size() &&
        std::equal(method.begin(), method.end(), key.begin(),
                   [](char a, char b) { return a == std::toupper(static_cast<unsigned char>(b)); }))
      return std::string(key);
  }
  return std::nullopt;
}

// `/users/{id:int}` -> `/users/{id}`: OpenAPI's path template. (The router took the pattern,
// so its braces pair up.)
std::string path_template(std::string_view pattern) {
  std::string out;
  while (true) {
    const std::size_t open = pattern.find('{');
    out.append(pattern.substr(0, open));
    if (open == std::string_view::npos) return out;
    const std::size_t close = pattern.find('}', open);
    const std::string_view inside = pattern.substr(open + 1, close - open - 1);
    out.append("{").append(inside.substr(0, inside.find(':'))).append("}");
    pattern.remove_prefix(close + 1);
  }
}

// "get_users_id" for an unnamed `GET /users/{id:int}`.
std::string operation_id(std::string_view key, const std::string& path) {
  std::string id(key);
  for (const char c : path) {
    const bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (word)
      id += c;
    else if (id.back() != '_')
      id += '_';
  }
  while (id.back() == '_') id.pop_back();
  return id;
}

json::object parameter(std::string_view name, std::string_view where, bool required,
                       json::value schema, std::string_view description) {
  json::object out{{"name", name}, {"in", where}, {"required", required}, {"schema", schema}};
  if (!description.empty()) out["description"] = description;
  return out;
}

std::string reason(int status) {
  const std::string_view text =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  return text == "<unknown-status>" ? "Status " + std::to_string(status) : std::string(text);
}

}  // namespace

class OpenApiWriter {
 public:
  json::object document(const App& app, const OpenApiInfo& info) {
    // The error shape is named first, so that a type of the app's own called ErrorAnswer is
    // the one named apart, and the names do not depend on which route comes first.
    schemas_.schema_of<ErrorAnswer>();
    json::object paths;
    for (const RouteInfo& route : app.routes()) {
      const RouteDoc* doc = route.options->doc.get();
      const std::optional<std::string> key = operation_key(route.method);
      // OpenAPI describes HTTP operations: a WebSocket's upgrade is none (FastAPI leaves them out).
      if (!key || route.websocket || (doc != nullptr && doc->hidden_)) continue;
      const std::string path = path_template(route.pattern);
      json::value& item = paths[path];
      if (!item.is_object()) item = json::object();
      item.as_object()[*key] = operation(route, path, *key, doc ? *doc : RouteDoc());
    }
    json::object information{{"title", info.title}, {"version", info.version}};
    if (!info.description.empty()) information["description"] = info.description;
    json::object out{{"openapi", "3.1.0"}, {"info", std::move(information)}};
    if (!info.root_path.empty())
      out["servers"] = json::array{json::object{{"url", info.root_path}}};
    out["paths"] = std::move(paths);
    json::object components;
    if (!schemas_.definitions().empty()) components["schemas"] = schemas_.definitions();
    if (!security_schemes_.empty()) components["securitySchemes"] = security_schemes_;
    if (!components.empty()) out["components"] = std::move(components);
    return out;
  }

 private:
  json::object operation(const RouteInfo& route, const std::string& path, std::string_view key,
                         const RouteDoc& doc) {
    json::object op;
    if (!doc.tags_.empty()) op["tags"] = json::array(doc.tags_.begin(), doc.tags_.end());
    if (!doc.summary_.empty()) op["summary"] = doc.summary_;
    if (!doc.description_.empty()) op["description"] = doc.description_;
    op["operationId"] =
        unique_id(route.name.empty() ? operation_id(key, path) : std::string(route.name));

    json::array parameters;
    // A typed path parameter answers 400 when the text is not its type.
    const bool takes_input =
        doc.body_.has_value() || !doc.params_.empty() ||
        std::any_of(doc.path_.begin(), doc.path_.end(),
                    [](const RouteDoc::Param& p) { return p.schema != nullptr; });
    for (const PatternParam& param : pattern_params(route.pattern)) {
      std::string_view description;
      RouteDoc::SchemaOf typed = nullptr;
      for (const RouteDoc::Param& described : doc.path_) {
        if (described.name != param.name) continue;
        description = described.description;
        typed = described.schema;
      }
      json::value schema = codec::detail::simple_schema("string");
      if (param.kind == ParamKind::Int) {  // the router takes digits only: no sign
        schema = codec::detail::integer_schema(8, true);
        schema.as_object()["minimum"] = 0;
      } else if (typed != nullptr) {
        schema = typed(schemas_);
      }
      parameters.push_back(parameter(param.name, "path", true, std::move(schema), description));
    }
    for (const RouteDoc::Param& param : doc.params_) {
      // OpenAPI 3.1 (§4.8.12.1): header parameters of these names are ignored; the document
      // leaves them out rather than list what tools will not show.
      if (param.in == RouteDoc::kHeader &&
          (iequals(param.name, "Accept") || iequals(param.name, "Content-Type") ||
           iequals(param.name, "Authorization")))
        continue;
      parameters.push_back(parameter(param.name, param.in, param.required, param.schema(schemas_),
                                     param.description));
    }
    if (!parameters.empty()) op["parameters"] = std::move(parameters);

    if (doc.body_) {
      json::object body{{"required", true}, {"content", content(*doc.body_)}};
      if (!doc.body_->description.empty()) body["description"] = doc.body_->description;
      op["requestBody"] = std::move(body);
    }

    json::object responses;
    bool answers_success = false;
    for (const RouteDoc::Answer& answer : doc.answers_) {
      json::object described{{"description", answer.content.description.empty()
                                                 ? reason(answer.status)
                                                 : answer.content.description}};
      if (answer.error_shape)
        described["content"] = error_content();
      else if (json::object media = content(answer.content); !media.empty())
        described["content"] = std::move(media);
      responses[std::to_string(answer.status)] = std::move(described);
      answers_success = answers_success || (answer.status >= 200 && answer.status < 400);
    }
    if (!answers_success) responses["200"] = json::object{{"description", reason(200)}};
    if (takes_input && !responses.contains("400"))
      responses["400"] =
          json::object{{"description", "The input is not valid"}, {"content", error_content()}};
    op["responses"] = std::move(responses);
    if (!doc.security_.empty()) {
      // One requirement naming every scheme: all of them are needed (the entries of the
      // `security` array would be alternatives).
      json::object requirement;
      for (const auto& [name, scheme] : doc.security_) {
        add_security_scheme(name, scheme);
        requirement[name] = json::array();
      }
      op["security"] = json::array{std::move(requirement)};
    }
    if (doc.deprecated_) op["deprecated"] = true;
    return op;
  }

  // Each media type with the schema of its type (none for bytes).
  json::object content(const RouteDoc::Content& content) {
    json::object media;
    const json::value schema = content.schema ? content.schema(schemas_) : json::value();
    for (const std::string& type : content.media_types)
      media[type] = content.schema ? json::object{{"schema", schema}} : json::object();
    return media;
  }

  json::object error_content() {
    return json::object{
        {"application/json", json::object{{"schema", schemas_.schema_of<ErrorAnswer>()}}}};
  }

  // `id`, or `id_2`, `id_3`... when a route has it already (`GET /a-b` and `GET /a_b`).
  std::string unique_id(const std::string& id) {
    std::string candidate = id;
    for (int n = 2; !operation_ids_.insert(candidate).second; ++n)
      candidate = id + "_" + std::to_string(n);
    return candidate;
  }

  // A scheme once, with the first words any route gives it (App saw to it that one name is
  // one scheme).
  void add_security_scheme(const std::string& name, const SecurityScheme& scheme) {
    json::value& entry = security_schemes_[name];
    if (!entry.is_object()) entry = json::object{{"type", scheme.type}};
    json::object& described = entry.as_object();
    const auto put = [&](std::string_view key, const std::string& value) {
      if (!value.empty() && !described.contains(key)) described[key] = value;
    };
    put("scheme", scheme.scheme);
    put("bearerFormat", scheme.bearer_format);
    put("in", scheme.in);
    put("name", scheme.name);
    put("description", scheme.description);
  }

  codec::SchemaSet schemas_{"#/components/schemas/"};
  json::object security_schemes_;
  std::set<std::string> operation_ids_;
};

}  // namespace detail

std::vector<RouteDoc::Param>::iterator RouteDoc::find_param(std::string_view in,
                                                            std::string_view name) {
  // Header names are case-insensitive; query and cookie names are not.
  return std::find_if(params_.begin(), params_.end(), [&](const Param& param) {
    return param.in == in && (in == kHeader ? iequals(param.name, name) : param.name == name);
  });
}

void RouteDoc::check_new_param(std::string_view in, const std::string& name) {
  if (find_param(in, name) != params_.end())
    throw std::invalid_argument("RouteDoc: " + std::string(in) + " parameter '" + name +
                                "' is declared twice");
}

RouteDoc& RouteDoc::merge(const RouteDoc& signature) {
  for (const auto& [name, scheme] : signature.security_) security(name, scheme);
  for (const std::string& tag : signature.tags_)
    if (std::find(tags_.begin(), tags_.end(), tag) == tags_.end()) tags_.push_back(tag);
  for (const Param& param : signature.params_) {
    const auto mine = find_param(param.in, param.name);
    if (mine == params_.end()) {
      params_.push_back(param);
    } else {  // the words this doc gives, the type the handler reads
      mine->schema = param.schema;
      mine->required = param.required;
    }
  }
  for (const Param& param : signature.path_) {
    const auto mine = std::find_if(path_.begin(), path_.end(),
                                   [&](const Param& p) { return p.name == param.name; });
    if (mine == path_.end())
      path_.push_back(param);
    else if (param.schema != nullptr)
      mine->schema = param.schema;
  }
  if (signature.body_) {
    std::string words = body_ ? body_->description : std::string();
    body_ = signature.body_;
    if (!words.empty()) body_->description = std::move(words);
  }
  for (const Answer& answer : signature.answers_) {
    // The handler's one success answer: the doc may not promise another.
    const bool success = !answer.error_shape && answer.status < 400;
    for (const Answer& mine : answers_) {
      if (!success || mine.error_shape || mine.status >= 400 || mine.status == answer.status)
        continue;
      throw std::invalid_argument("RouteDoc: the doc declares a " + std::to_string(mine.status) +
                                  " answer, and the handler answers " +
                                  std::to_string(answer.status));
    }
    const auto mine = std::find_if(answers_.begin(), answers_.end(),
                                   [&](const Answer& a) { return a.status == answer.status; });
    if (mine == answers_.end()) {
      answers_.push_back(answer);
    } else {
      std::string words = std::move(mine->content.description);
      *mine = answer;
      if (!words.empty()) mine->content.description = std::move(words);
    }
  }
  return *this;
}

std::string SecurityScheme::identity() const {
  return type + '\n' + scheme + '\n' + in + '\n' + name;
}

RouteDoc& RouteDoc::security(std::string name, SecurityScheme scheme) {
  const auto refuse = [&](const std::string& why) {
    throw std::invalid_argument("RouteDoc: security scheme '" + name + "': " + why);
  };
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (name.empty() || !std::all_of(name.begin(), name.end(), [&](char c) {
        return alnum(c) || c == '.' || c == '-' || c == '_';
      }))
    refuse("a name is letters, digits, '.', '-' and '_'");
  if (scheme.type == "http") {
    if (scheme.scheme.empty() || !std::all_of(scheme.scheme.begin(), scheme.scheme.end(),
                                              [&](char c) { return alnum(c) || c == '-'; }))
      refuse("an http scheme names its scheme (bearer, basic)");
    if (!scheme.in.empty() || !scheme.name.empty()) refuse("an http scheme has no in or name");
  } else if (scheme.type == "apiKey") {
    if (scheme.in != "query" && scheme.in != "header" && scheme.in != "cookie")
      refuse("an apiKey is in a query, header or cookie");
    if (scheme.name.empty()) refuse("an apiKey names its parameter, header or cookie");
    if (!scheme.scheme.empty() || !scheme.bearer_format.empty())
      refuse("an apiKey has no scheme or bearer format");
  } else {
    refuse("its type is http or apiKey");
  }
  for (auto& [known, definition] : security_) {
    if (known != name) continue;
    if (definition.identity() != scheme.identity()) refuse("declared twice, in two ways");
    // The same scheme: words given once stay, words given now fill what was not.
    if (definition.bearer_format.empty()) definition.bearer_format = scheme.bearer_format;
    if (definition.description.empty()) definition.description = scheme.description;
    return *this;
  }
  security_.emplace_back(std::move(name), std::move(scheme));
  return *this;
}

std::vector<std::pair<std::string, std::string>> RouteDoc::security_identities() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, scheme] : security_) out.emplace_back(name, scheme.identity());
  return out;
}

RouteDoc& RouteDoc::add_reader(const RouteDoc& reader) {
  const auto refuse = [](std::string_view what, std::string_view name) {
    throw std::invalid_argument("RouteDoc: " + std::string(what) + " '" + std::string(name) +
                                "' is read twice, in two ways");
  };
  for (const Param& param : reader.params_) {
    const auto same = find_param(param.in, param.name);
    if (same == params_.end())
      params_.push_back(param);
    else if (same->schema != param.schema || same->required != param.required)
      refuse(std::string(param.in) + " parameter", param.name);
  }
  for (const Param& param : reader.path_) {
    const auto same = std::find_if(path_.begin(), path_.end(),
                                   [&](const Param& p) { return p.name == param.name; });
    if (same == path_.end())
      path_.push_back(param);
    else if (same->schema != param.schema)
      refuse("path parameter", param.name);
  }
  if (reader.body_) {
    if (body_ &&
        (body_->schema != reader.body_->schema || body_->media_types != reader.body_->media_types))
      refuse("the body", "body");
    body_ = reader.body_;
  }
  for (const Answer& answer : reader.answers_)
    if (std::none_of(answers_.begin(), answers_.end(),
                     [&](const Answer& a) { return a.status == answer.status; }))
      answers_.push_back(answer);
  for (const auto& [name, scheme] : reader.security_) security(name, scheme);
  for (const std::string& tag : reader.tags_)
    if (std::find(tags_.begin(), tags_.end(), tag) == tags_.end()) tags_.push_back(tag);
  return *this;
}

void RouteDoc::check_pattern(std::string_view method, std::string_view pattern) const {
  if (path_.empty()) return;
  std::vector<PatternParam> in_pattern;
  try {
    in_pattern = pattern_params(pattern);
  } catch (const RouteError&) {
    return;  // a malformed pattern: the router says so, naming the route whole
  }
  for (const Param& described : path_)
    if (std::none_of(in_pattern.begin(), in_pattern.end(),
                     [&](const PatternParam& p) { return p.name == described.name; }))
      throw RouteError("route '" + std::string(method) + " " + std::string(pattern) +
                       "': a path parameter '" + described.name +
                       "' is read or described that "
                       "the pattern does not have");
}

int RouteDoc::checked_status(int status) {
  if (status < 100 || status > 599)
    throw std::invalid_argument("RouteDoc: " + std::to_string(status) +
                                " is not an HTTP status (100 to 599)");
  return status;
}

boost::json::object openapi_document(const App& app, const OpenApiInfo& info) {
  return detail::OpenApiWriter().document(app, info);
}

namespace {

void append_html_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

// A page that loads Swagger UI and shows the document at `json_url`.
std::string docs_page(const OpenApiOptions& options) {
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  append_html_escaped(page, options.title);
  page += "</title>\n<link rel=\"stylesheet\" href=\"";
  append_html_escaped(page, options.swagger_ui_url + "/swagger-ui.css");
  page += "\">\n</head>\n<body>\n<div id=\"swagger-ui\"></div>\n<script src=\"";
  append_html_escaped(page, options.swagger_ui_url + "/swagger-ui-bundle.js");
  page += "\"></script>\n<script>\nSwaggerUIBundle({url: ";
  // A JSON string is a JavaScript string; "<" escaped so that no "</script>" can end it.
  std::string url;
  codec::write_json_string(url, options.root_path + options.json_path);
  for (const char c : url) page += c == '<' ? std::string("\\u003c") : std::string(1, c);
  page += ", dom_id: \"#swagger-ui\"});\n</script>\n</body>\n</html>\n";
  return page;
}

}  // namespace

void serve_openapi(App& app, OpenApiOptions options) {
  struct Document {
    OpenApiInfo info;
    std::once_flag built;
    std::string text;
  };
  auto document = std::make_shared<Document>();
  document->info = {options.title, options.version, options.description, options.root_path};
  app.get(options.json_path,
          [document](const Request&, Ctx& ctx) -> boost::asio::awaitable<Response> {
            // Built when first asked, once every route is in (the app is frozen by then).
            std::call_once(document->built, [&] {
              document->text = boost::json::serialize(openapi_document(ctx.app(), document->info));
            });
            co_return Response::json_text(document->text);
          },
          "openapi", {.doc = RouteDoc().hidden()});
  if (options.docs_path.empty()) return;
  app.get(options.docs_path,
          [page = docs_page(options)](const Request&, Ctx&) -> boost::asio::awaitable<Response> {
            co_return Response(200, page, "text/html; charset=utf-8");
          },
          "openapi.docs", {.doc = RouteDoc().hidden()});
}

}  // namespace molt::web
