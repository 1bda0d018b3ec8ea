// Form bodies, as HTML forms send them (FastAPI's Form and File): application/
// x-www-form-urlencoded and multipart/form-data.
//
//   struct Signup {
//     std::string email;
//     int age = 0;
//     bool newsletter = false;
//     std::vector<std::string> tags;          // every value of a repeated field
//     std::optional<UploadedFile> avatar;     // a file field of a multipart form
//   };
//   BOOST_DESCRIBE_STRUCT(Signup, (), (email, age, newsletter, tags, avatar))
//   MOLT_DEFAULTS(Signup, newsletter, tags)
//
//   const auto signup = molt::web::form_as<Signup>(request);  // 400 naming the field: "form.age"
//
// A field reads as query_as reads a query parameter (text, a bool as "on"/"true"/"1"..., a
// number); a MOLT_DEFAULTS member or a std::optional may be missing; MOLT_RULES hold. The
// form is parsed whole from the request's body, so an upload route raises its
// RouteOptions::max_body_bytes (1 MiB by default); for uploads larger than memory should
// hold, MultipartReader (molt/web/multipart.hpp) reads the parts as they arrive.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "molt/codec/decode_error.hpp"
#include "molt/codec/json_schema.hpp"
#include "molt/codec/rules.hpp"
#include "molt/codec/traits.hpp"
#include "molt/web/multipart.hpp"
#include "molt/web/typed.hpp"

namespace molt::web {

// A file sent in a multipart form.
struct UploadedFile {
  std::string filename;      // as the client named it: never a path to trust
  std::string content_type;  // as the client said (application/octet-stream when it did not)
  std::string data;
};
// In a form's schema (RouteDoc::form<T>), a file is its bytes.
boost::json::value molt_json_schema(codec::SchemaTag<UploadedFile>);

struct FormField {
  std::string name;
  std::string value;                    // the text, or the file's bytes
  std::optional<std::string> filename;  // set for a file
  std::string content_type;             // a multipart part's own ("" otherwise)
};

class Form {
 public:
  // At most this many fields (Starlette's max_fields), and this much head per part.
  static constexpr std::size_t kMaxFields = MultipartReader::kMaxParts;
  static constexpr std::size_t kMaxPartHead = MultipartParser::kMaxPartHead;

  // The request's body by its Content-Type: HttpError 415 for another type, 400
  // (invalid_form) for a body that is not a well-formed form of its type, or a text field
  // that is not UTF-8.
  static Form parse(const Request& request);
  static Form parse(std::string_view content_type, std::string_view body);

  const std::vector<FormField>& fields() const { return fields_; }
  // The last text value of `name` (as query_param reads a repeated parameter).
  std::optional<std::string_view> value(std::string_view name) const;
  // Every text value of `name`, in order.
  std::vector<std::string_view> values(std::string_view name) const;
  // Every file of `name`, in order (a file input left empty is none).
  std::vector<const FormField*> files(std::string_view name) const;
  std::vector<FormField*> files(std::string_view name);

 private:
  std::vector<FormField> fields_;
};

namespace detail {
template <class T>
struct is_uploaded_files : std::false_type {};
template <>
struct is_uploaded_files<std::vector<UploadedFile>> : std::true_type {};

UploadedFile uploaded(FormField&& field);
}  // namespace detail

// The request's form as T, a described struct: each member from the field of its name. 415 and
// 400 as Form::parse; a missing or malformed field is a 400 naming it ("form.age: expected an
// integer in range, got \"x\""), as body_as does.
template <class T>
T form_as(const Request& request) {
  static_assert(codec::traits::is_described_struct_v<T>, "form_as<T>: T is a described struct");
  static_assert(codec::traits::defaults_name_members<T>(),
                "MOLT_DEFAULTS lists a name that is not a described member of this struct");
  Form form = Form::parse(request);  // its files are moved into the result
  T out{};
  const codec::PathSegment root{nullptr, "form", 0};
  boost::mp11::mp_for_each<boost::describe::describe_members<
      T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
    using M = std::remove_cvref_t<decltype(out.*member.pointer)>;
    const codec::PathSegment at = root.field(member.name);
    auto& target = out.*member.pointer;
    if constexpr (std::is_same_v<typename codec::traits::without_optional<M>::type, UploadedFile>) {
      const auto files = form.files(member.name);
      if (!files.empty()) {
        target = detail::uploaded(std::move(*files.back()));
      } else {
        if (const auto text = form.value(member.name); text && !text->empty())
          detail::field_error(at, "a file", "text");
        if constexpr (codec::traits::keeps_default<T>(decltype(member)::name))
          codec::detail::restore_default(out, member.pointer);
        else if constexpr (codec::traits::is_optional<M>::value)
          target.reset();
        else
          detail::field_error(at, "a file", "nothing (the field is required)");
      }
    } else if constexpr (detail::is_uploaded_files<M>::value) {
      target.clear();
      for (FormField* file : form.files(member.name))
        target.push_back(detail::uploaded(std::move(*file)));
    } else {
      // A blank input counts as not sent, as FastAPI reads forms: a browser sends every
      // field, empty ones too.
      const std::vector<std::string_view> texts = form.values(member.name);
      // A file where text is expected: anywhere under a list, else in the value's place.
      const bool file_instead =
          !form.files(member.name).empty() &&
          (codec::traits::is_vector<M>::value || texts.empty() || texts.back().empty());
      if (file_instead) detail::field_error(at, "text", "a file");
      detail::text_member(out, member, texts, at, true);
    }
  });
  codec::check_rules(out, root);
  return out;
}

}  // namespace molt::web
