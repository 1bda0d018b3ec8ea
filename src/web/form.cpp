#include "molt/web/form.hpp"

#include "form_detail.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/web/multipart.hpp"

namespace molt::web {

namespace detail {

void form_malformed(std::string_view why) {
  throw HttpError(400, "invalid_form", "the form is malformed: " + std::string(why));
}

std::string_view media_type(std::string_view content_type) {
  return trim_ows(content_type.substr(0, content_type.find(';')));
}

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

}  // namespace detail

namespace {

using detail::form_malformed;
using detail::media_type;

void add_field(std::vector<FormField>& fields, FormField field) {
  if (fields.size() == Form::kMaxFields)
    form_malformed("more than " + std::to_string(Form::kMaxFields) + " fields");
  if (!field.filename && !codec::is_valid_utf8(field.value))
    form_malformed("field '" + codec::replace_invalid_utf8(field.name) + "' is not UTF-8 text");
  fields.push_back(std::move(field));
}

// a=1&b=two+words&c=%C3%A9, as a query string is (spaces as '+').
std::vector<FormField> parse_urlencoded(std::string_view body) {
  std::vector<FormField> fields;
  const auto decode = [](std::string_view text) { return detail::percent_decoded(text, true); };
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    FormField field{decode(pair.substr(0, eq)), {}, std::nullopt, {}};
    if (eq != std::string_view::npos) field.value = decode(pair.substr(eq + 1));
    if (!codec::is_valid_utf8(field.name)) form_malformed("a field's name is not UTF-8 text");
    add_field(fields, std::move(field));
  }
  return fields;
}

// RFC 7578: the parts, each whole, as MultipartParser gives them.
std::vector<FormField> parse_multipart(std::string_view content_type, std::string_view body) {
  MultipartParser parser(content_type);
  std::vector<FormField> fields;
  FormField field;
  bool fed = false;
  while (true) {
    switch (parser.next()) {
      case MultipartParser::Event::NeedInput:
        if (fed) {
          parser.finish();
        } else {
          parser.feed(body);
          fed = true;
        }
        break;
      case MultipartParser::Event::Part: {
        const FormPart& part = parser.part();
        field = FormField{part.name, {}, part.filename, part.content_type};
        break;
      }
      case MultipartParser::Event::Data:
        field.value.append(parser.data());
        break;
      case MultipartParser::Event::PartEnd:
        // A file input left empty: browsers send a part with no filename and no bytes
        // (Django skips it too).
        if (!(field.filename && field.filename->empty() && field.value.empty()))
          add_field(fields, std::move(field));
        break;
      case MultipartParser::Event::Done:
        return fields;
    }
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

}  // namespace detail

}  // namespace molt::web
