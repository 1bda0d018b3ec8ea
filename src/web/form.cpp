#include "molt/web/form.hpp"

#include "molt/codec/utf8.hpp"

namespace molt::web {

namespace {

[[noreturn]] void malformed(std::string_view why) {
  throw HttpError(400, "invalid_form", "the form is malformed: " + std::string(why));
}

std::string_view media_type(std::string_view content_type) {
  return trim_ows(content_type.substr(0, content_type.find(';')));
}

void add_field(std::vector<FormField>& fields, FormField field) {
  if (fields.size() == Form::kMaxFields)
    malformed("more than " + std::to_string(Form::kMaxFields) + " fields");
  if (!field.filename && !codec::is_valid_utf8(field.value))
    malformed("field '" + codec::replace_invalid_utf8(field.name) + "' is not UTF-8 text");
  fields.push_back(std::move(field));
}

// `text` with its %XX escapes decoded (and '+' as a space when `plus`); a '%' not followed by
// two hex digits stays as it is, as Starlette and Django read forms.
std::string percent_decoded(std::string_view text, bool plus) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += plus && text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

// RFC 5987's `charset'language'%-encoded` (filename*=UTF-8''r%C3%A9sum%C3%A9.pdf): the text.
std::string extended_value(std::string_view text) {
  const std::size_t first = text.find('\'');
  const std::size_t second = first == std::string_view::npos ? first : text.find('\'', first + 1);
  if (second == std::string_view::npos) return std::string(text);
  return percent_decoded(text.substr(second + 1), false);
}

// a=1&b=two+words&c=%C3%A9, as a query string is (spaces as '+').
std::vector<FormField> parse_urlencoded(std::string_view body) {
  std::vector<FormField> fields;
  const auto decode = [](std::string_view text) { return percent_decoded(text, true); };
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    FormField field{decode(pair.substr(0, eq)), {}, std::nullopt, {}};
    if (eq != std::string_view::npos) field.value = decode(pair.substr(eq + 1));
    if (!codec::is_valid_utf8(field.name)) malformed("a field's name is not UTF-8 text");
    add_field(fields, std::move(field));
  }
  return fields;
}

// The parameters of a header value after its first token: `form-data; name="a"; filename=b`.
// Quoted values may hold ';' and backslash escapes.
std::vector<std::pair<std::string, std::string>> header_parameters(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find_first_of("=;", i);
    if (eq == std::string_view::npos) break;
    if (value[eq] == ';') {  // a parameter without a value: skipped
      i = eq;
      continue;
    }
    std::string name(trim_ows(value.substr(i, eq - i)));
    std::string text;
    i = eq + 1;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i < value.size() && value[i] == '"') {
      // Browsers and curl send a backslash as it is (they escape '"' as %22): only \" and
      // \\ are escapes, as python-multipart reads them ("C:\dir\a.txt" stays whole), and a
      // \" with no quote after it is a backslash that ends the name ("dir\").
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        const bool escape =
            value[i] == '\\' && i + 1 < value.size() &&
            (value[i + 1] == '\\' ||
             (value[i + 1] == '"' && value.find('"', i + 2) != std::string_view::npos));
        if (escape) ++i;
        text += value[i];
      }
      if (i >= value.size()) malformed("a quoted parameter does not end");
      i = value.find(';', i);
    } else {
      const std::size_t end = value.find(';', i);
      text = std::string(trim_ows(value.substr(i, end == std::string_view::npos ? end : end - i)));
      i = end;
    }
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.emplace_back(std::move(name), std::move(text));
  }
  return out;
}

// One part's head: its Content-Disposition (name, filename) and Content-Type.
FormField part_head(std::string_view head) {
  FormField field;
  bool disposition = false;
  while (!head.empty()) {
    const std::size_t end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    head = end == std::string_view::npos ? std::string_view() : head.substr(end + 2);
    // A lone CR or LF (or another control byte) would pass into a header the handler may
    // answer with (a file's Content-Type).
    if (std::any_of(line.begin(), line.end(), [](char c) {
          return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F;
        }))
      malformed("a part's header holds a control character");
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) malformed("a part's header line has no ':'");
    const std::string_view name = trim_ows(line.substr(0, colon));
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      if (!iequals(media_type(value), "form-data")) malformed("a part is not form-data");
      disposition = true;
      std::optional<std::string> extended;
      bool named = false;
      for (auto& [key, text] : header_parameters(value)) {
        if (key == "name") {
          field.name = std::move(text);
          named = true;
        }
        if (key == "filename") field.filename = std::move(text);
        if (key == "filename*") extended = std::move(text);
      }
      if (!named) malformed("a part has no name");
      if (extended) field.filename = extended_value(*extended);  // RFC 5987: it wins
    } else if (iequals(name, "Content-Type")) {
      field.content_type = std::string(value);
    } else if (iequals(name, "Content-Transfer-Encoding")) {
      // RFC 7578 §4.7: not to be used; a part in base64 would be read as its encoding.
      if (!iequals(value, "binary") && !iequals(value, "8bit") && !iequals(value, "7bit"))
        malformed("a part's Content-Transfer-Encoding " + std::string(value) + " is not read");
    }
  }
  if (!disposition) malformed("a part has no Content-Disposition");
  if (!codec::is_valid_utf8(field.name)) malformed("a field's name is not UTF-8 text");
  if (field.filename && !codec::is_valid_utf8(*field.filename))
    field.filename = codec::replace_invalid_utf8(*field.filename);
  return field;
}

// RFC 7578 / RFC 2046 §5.1: parts between `--boundary` lines, the last one `--boundary--`.
std::vector<FormField> parse_multipart(std::string_view content_type, std::string_view body) {
  std::string boundary;
  for (auto& [key, text] : header_parameters(content_type))
    if (key == "boundary") boundary = std::move(text);
  if (boundary.empty() || boundary.size() > 70)
    malformed("multipart/form-data needs a boundary of 1 to 70 characters");
  const std::string delimiter = "--" + boundary;
  const std::string next_delimiter = "\r\n" + delimiter;
  std::vector<FormField> fields;
  // The first delimiter opens the body, or ends a preamble line.
  std::size_t at = body.starts_with(delimiter) ? 0 : body.find(next_delimiter);
  if (at == std::string_view::npos) malformed("no part begins (the boundary is not in the body)");
  at += body.starts_with(delimiter) ? delimiter.size() : next_delimiter.size();
  while (true) {
    if (body.compare(at, 2, "--") == 0)
      return fields;  // the last delimiter; an epilogue may follow
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.compare(at, 2, "\r\n") != 0) malformed("a boundary line does not end where it should");
    at += 2;
    std::size_t content = at;
    std::string_view head;
    if (body.compare(at, 2, "\r\n") == 0) {
      content = at + 2;  // a part without header lines
    } else {
      const std::size_t head_end = body.find("\r\n\r\n", at);
      if (head_end == std::string_view::npos || head_end - at > Form::kMaxPartHead)
        malformed("a part's head does not end (or passes 16 KiB)");
      head = body.substr(at, head_end - at);
      content = head_end + 4;
    }
    const std::size_t end = body.find(next_delimiter, content);
    if (end == std::string_view::npos) malformed("the body ends inside a part");
    FormField field = part_head(head);
    field.value = std::string(body.substr(content, end - content));
    // A file input left empty: browsers send a part with no filename and no bytes (Django
    // skips it too).
    if (!(field.filename && field.filename->empty() && field.value.empty()))
      add_field(fields, std::move(field));
    at = end + next_delimiter.size();
  }
}

}  // namespace

Form Form::parse(const Request& request) {
  if (request.body_streamed())
    throw std::logic_error("Form::parse(request) on a route with stream_body");
  const auto type = request.header("Content-Type");
  return parse(type.value_or(std::string_view()), request.body());
}

Form Form::parse(std::string_view content_type, std::string_view body) {
  Form form;
  const std::string_view media = media_type(content_type);
  if (iequals(media, "application/x-www-form-urlencoded"))
    form.fields_ = parse_urlencoded(body);
  else if (iequals(media, "multipart/form-data"))
    form.fields_ = parse_multipart(content_type, body);
  else
    throw HttpError(415, "unsupported_media_type",
                    "send application/x-www-form-urlencoded or multipart/form-data");
  return form;
}

std::optional<std::string_view> Form::value(std::string_view name) const {
  std::optional<std::string_view> last;
  for (const FormField& field : fields_)
    if (!field.filename && field.name == name) last = field.value;
  return last;
}

std::vector<std::string_view> Form::values(std::string_view name) const {
  std::vector<std::string_view> all;
  for (const FormField& field : fields_)
    if (!field.filename && field.name == name) all.push_back(field.value);
  return all;
}

std::vector<const FormField*> Form::files(std::string_view name) const {
  std::vector<const FormField*> all;
  for (const FormField& field : fields_)
    if (field.filename && field.name == name) all.push_back(&field);
  return all;
}

std::vector<FormField*> Form::files(std::string_view name) {
  std::vector<FormField*> all;
  for (FormField& field : fields_)
    if (field.filename && field.name == name) all.push_back(&field);
  return all;
}

boost::json::value molt_json_schema(codec::SchemaTag<UploadedFile>) {
  // OpenAPI 3.1's word for bytes, and 3.0's, which Swagger UI still reads for a file picker.
  return boost::json::object{
      {"type", "string"}, {"contentMediaType", "application/octet-stream"}, {"format", "binary"}};
}

namespace detail {

UploadedFile uploaded(FormField&& field) {
  return {field.filename.value_or(""),
          field.content_type.empty() ? std::string("application/octet-stream") : field.content_type,
          std::move(field.value)};
}

void form_field_error(const codec::PathSegment& at, std::string_view expected,
                      std::string_view got) {
  throw codec::DecodeError(at, expected, got);
}

}  // namespace detail

}  // namespace molt::web
