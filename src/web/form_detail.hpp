// What form.cpp and multipart.cpp share.
#pragma once

#include <string>
#include <string_view>

namespace molt::web::detail {

// HttpError 400 invalid_form: "the form is malformed: <why>".
[[noreturn]] void form_malformed(std::string_view why);

// `text` with its %XX escapes decoded (and '+' as a space when `plus`); a '%' not followed by
// two hex digits stays as it is, as Starlette and Django read forms.
std::string percent_decoded(std::string_view text, bool plus);

// The media type of a Content-Type value, without its parameters.
std::string_view media_type(std::string_view content_type);

}  // namespace molt::web::detail
