// fuzz_form: form bodies against molt::web::Form and form_as.
//
// Input: a first byte choosing the type (even: urlencoded, odd: multipart with the boundary
// "B"), then the body. Properties: no crash; a body is parsed or refused with an HttpError
// (400 invalid_form); every text field of a parsed form is UTF-8; no more than kMaxFields
// fields; form_as of a described struct decodes or throws a DecodeError naming a form field;
// MultipartParser fed the body in pieces (their size from the first byte) reads what it reads
// from the whole body, error included.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "molt/codec/utf8.hpp"
#include "molt/web/form.hpp"
#include "molt/web/multipart.hpp"

namespace fuzz_form {
struct Fields {
  std::string a;
  std::int64_t n = 0;
  bool on = false;
  std::vector<std::string> tags;
  std::optional<molt::web::UploadedFile> file;
};
BOOST_DESCRIBE_STRUCT(Fields, (), (a, n, on, tags, file))
MOLT_DEFAULTS(Fields, n, on, tags)
// The pattern's matcher (RE2) reads whatever text the form carries too.
MOLT_RULES(Fields, rule(&Fields::a, pattern(R"(^(\w|[^\x00-\x7f])*\.?.$)"), max_length(8)))
}  // namespace fuzz_form

// The parser's events over `body` fed in pieces of `piece` bytes, each from a buffer that is
// overwritten when the parser asks for more; data pieces joined.
std::string multipart_events(std::string_view body, std::size_t piece) {
  std::string out;
  try {
    molt::web::MultipartParser parser("multipart/form-data; boundary=B");
    std::string buffer;
    std::size_t fed = 0;
    while (true) {
      switch (parser.next()) {
        case molt::web::MultipartParser::Event::NeedInput:
          if (fed == body.size()) {
            parser.finish();
          } else {
            buffer.assign(body.substr(fed, piece));
            fed += buffer.size();
            parser.feed(buffer);
          }
          break;
        case molt::web::MultipartParser::Event::Part:
          out += "\npart " + parser.part().name + "/" + parser.part().filename.value_or("-") + "/" +
                 parser.part().content_type + "\n";
          break;
        case molt::web::MultipartParser::Event::Data:
          FUZZ_CHECK(!parser.data().empty());
          out += parser.data();
          break;
        case molt::web::MultipartParser::Event::PartEnd:
          out += "\nend";
          break;
        case molt::web::MultipartParser::Event::Done:
          return out + "\ndone";
      }
    }
  } catch (const molt::web::HttpError& e) {
    FUZZ_CHECK(e.status() == 400);
    return out + "\nerror " + e.message();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool multipart = (data[0] & 1) != 0;
  const std::string_view type =
      multipart ? "multipart/form-data; boundary=B" : "application/x-www-form-urlencoded";
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (multipart)
    FUZZ_CHECK(multipart_events(body, 1 + (data[0] >> 1) % 24) ==
               multipart_events(body, body.size() + 1));
  try {
    const molt::web::Form form = molt::web::Form::parse(type, body);
    FUZZ_CHECK(form.fields().size() <= molt::web::Form::kMaxFields);
    for (const auto& field : form.fields()) {
      FUZZ_CHECK(molt::codec::is_valid_utf8(field.name));
      if (!field.filename) FUZZ_CHECK(molt::codec::is_valid_utf8(field.value));
    }
  } catch (const molt::web::HttpError& e) {
    FUZZ_CHECK(e.status() == 400);
    return 0;
  }
  molt::web::Request request;
  request.set_start_line("POST", "/", 11);
  request.add_header("Content-Type", type);
  request.body() = body;
  try {
    const fuzz_form::Fields fields = molt::web::form_as<fuzz_form::Fields>(request);
    FUZZ_CHECK(molt::codec::is_valid_utf8(fields.a));
  } catch (const molt::codec::DecodeError& e) {
    FUZZ_CHECK(e.path().starts_with("form."));
  }
  return 0;
}
