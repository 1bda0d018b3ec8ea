#include "molt/web/static_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "http_date.hpp"
#include "molt/core/status.hpp"
#include "molt/web/openapi.hpp"

namespace molt::web {

namespace {

namespace fs = std::filesystem;

struct Folder {
  fs::path path;
  StaticOptions options;
};

// An open file, closed with its last owner (a streamed answer holds it while it is sent).
class OpenFile {
 public:
  explicit OpenFile(int fd) : fd_(fd) {}
  ~OpenFile() { ::close(fd_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  int fd() const { return fd_; }

  // `size` bytes from `offset`; std::runtime_error if the file ends first (it shrank).
  std::string read(std::uint64_t offset, std::size_t size) const {
    std::string out(size, '\0');
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category(), "reading a static file");
      if (n == 0) throw std::runtime_error("a static file ended before its length: it shrank");
      done += static_cast<std::size_t>(n);
    }
    return out;
  }

 private:
  int fd_;
};

struct FoundFile {
  std::shared_ptr<OpenFile> file;
  std::string extension;  // of the file opened (index.html for a folder)
  std::uint64_t size = 0;
  std::time_t modified = 0;
  std::int64_t modified_ns = 0;
};

// Whether `path` is `folder` or inside it, compared by components (both canonical: no `.`,
// `..` or trailing slash).
bool is_within(const fs::path& path, const fs::path& folder) {
  return std::mismatch(folder.begin(), folder.end(), path.begin(), path.end()).first ==
         folder.end();
}

// What a failed open() or stat() means when the file is there: a failure of the server's own,
// which must not pass for a missing file (a 404 a CDN would keep).
[[noreturn]] void fail_open(int error) {
  if (error == EACCES || error == EPERM)
    throw HttpError(403, "forbidden", "the file cannot be read");
  if (error == EMFILE || error == ENFILE)
    throw core::Error(core::StatusCode::Busy, "no file descriptor free to open a static file");
  throw std::system_error(error, std::generic_category(), "opening a static file");
}
bool means_absent(int error) {
  return error == ENOENT || error == ENOTDIR || error == ELOOP || error == ENAMETOOLONG ||
         error == ENXIO || error == ENODEV;
}

enum class Kind { File, Folder, Other };

// Opens `path` (O_NONBLOCK: a FIFO never holds the thread). Nothing when it is not there, or
// when the file it opened is not inside `within`: what was checked before the open may have
// been swapped for a link meanwhile, so the open file's own path decides.
std::optional<FoundFile> open_checked(const fs::path& path, const fs::path* within, Kind& kind) {
  kind = Kind::Other;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (means_absent(errno)) return std::nullopt;
    fail_open(errno);
  }
  auto file = std::make_shared<OpenFile>(fd);
  if (within != nullptr) {
    std::error_code ec;
    const fs::path real = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
    if (ec || !is_within(real, *within)) return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_open(errno);
  kind = S_ISREG(st.st_mode) ? Kind::File : S_ISDIR(st.st_mode) ? Kind::Folder : Kind::Other;
  if (kind != Kind::File) return std::nullopt;
  return FoundFile{
      std::move(file), path.extension().string(), static_cast<std::uint64_t>(st.st_size),
      st.st_mtim.tv_sec,
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// What a request's `path` parameter names under the folder.
struct Lookup {
  std::optional<FoundFile> file;
  bool folder_without_slash = false;  // an index.html to answer through a redirect
};

Lookup find_file(const Folder& folder, std::string_view relative, bool ends_in_slash) {
  // A leading or doubled slash ("/static//etc/passwd") would make the path absolute.
  if (relative.starts_with('/') || relative.find("//") != std::string_view::npos ||
      relative.find('\0') != std::string_view::npos)
    return {};
  // The folder is resolved for each request: a deploy that swaps a link to it (current ->
  // release-2) is served at once.
  std::error_code ec;
  const fs::path root = fs::canonical(folder.path, ec);
  if (ec) throw std::system_error(ec, "the static folder " + folder.path.string());
  const fs::path path = root / fs::path(relative);
  const fs::path* within = folder.options.follow_links_out ? nullptr : &root;
  Kind kind;
  Lookup found{open_checked(path, within, kind)};
  if (!found.file && kind == Kind::Folder && folder.options.index_html) {
    Kind index_kind;
    std::optional<FoundFile> index = open_checked(path / "index.html", within, index_kind);
    if (index && !ends_in_slash && !relative.empty()) return {std::nullopt, true};
    found.file = std::move(index);
  }
  return found;
}

constexpr std::pair<std::string_view, const char*> kTypes[] = {
    {".html", "text/html"},        {".htm", "text/html"},
    {".css", "text/css"},          {".js", "text/javascript"},
    {".mjs", "text/javascript"},   {".json", "application/json"},
    {".map", "application/json"},  {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain"},        {".md", "text/markdown"},
    {".csv", "text/csv"},          {".xml", "application/xml"},
    {".svg", "image/svg+xml"},     {".png", "image/png"},
    {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},         {".webp", "image/webp"},
    {".avif", "image/avif"},       {".ico", "image/x-icon"},
    {".woff", "font/woff"},        {".woff2", "font/woff2"},
    {".ttf", "font/ttf"},          {".otf", "font/otf"},
    {".wasm", "application/wasm"}, {".pdf", "application/pdf"},
    {".zip", "application/zip"},   {".gz", "application/gzip"},
    {".mp4", "video/mp4"},         {".webm", "video/webm"},
    {".mp3", "audio/mpeg"},        {".ogg", "audio/ogg"},
    {".wav", "audio/wav"},
};

const char* content_type_for(std::string_view extension) {
  for (const auto& [known, type] : kTypes)
    if (iequals(extension, known)) return type;
  return "application/octet-stream";
}

// "tag" of an entity-tag, without W/ (If-None-Match compares weakly, RFC 9110 §13.1.2).
std::string_view opaque_tag(std::string_view tag) {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

bool none_match(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const std::string_view tag = next_list_element(header);
    if (tag == "*" || opaque_tag(tag) == etag) return true;
  }
  return false;
}

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

// One `bytes=first-last`, `first-` or `-suffix` range of a file of `size` bytes. Nothing
// for a header that asks for several ranges or is not understood (the whole file answers,
// as RFC 9110 §14.2 allows); an empty range when none of it is in the file (a 416).
std::optional<std::optional<ByteRange>> parse_range(std::string_view header, std::uint64_t size) {
  if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes=")) return std::nullopt;
  const std::string_view spec = trim_ows(header.substr(6));
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return {};
  // Digits past 2^64 are a position past any file's end.
  const auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ptr != digits.data() + digits.size()) return std::nullopt;
    if (ec == std::errc::result_out_of_range) return UINT64_MAX;
    if (ec != std::errc()) return std::nullopt;
    return value;
  };
  const std::string_view from = spec.substr(0, dash), to = spec.substr(dash + 1);
  if (from.empty()) {  // the last `suffix` bytes
    const auto suffix = number(to);
    if (!suffix) return {};
    if (*suffix == 0 || size == 0) return std::optional<ByteRange>();
    return std::optional<ByteRange>(ByteRange{size - std::min(*suffix, size), size - 1});
  }
  const auto first = number(from);
  const auto last = to.empty() ? std::optional<std::uint64_t>(UINT64_MAX) : number(to);
  if (!first || !last || *last < *first) return {};
  if (*first >= size) return std::optional<ByteRange>();
  return std::optional<ByteRange>(ByteRange{*first, std::min(*last, size - 1)});
}

Response serve(const Folder& folder, const Request& request, const Ctx& ctx) {
  const Lookup lookup =
      find_file(folder, ctx.param("path").value_or(""), request.path().ends_with('/'));
  if (lookup.folder_without_slash) {
    // As Starlette: the folder's own URL ends in '/', so that its page's relative links work.
    Response redirect(307);
    std::string location(request.path());
    location += '/';
    if (!request.query().empty()) location.append("?").append(request.query());
    redirect.set_header("Location", location);
    return redirect;
  }
  const std::optional<FoundFile>& found = lookup.file;
  if (!found) throw HttpError(404, "not_found", "no such file");
  const std::string etag = "\"" + [&] {
    std::string tag;
    char digits[20];
    tag.append(digits, std::to_chars(digits, digits + 20, found->size, 16).ptr);
    tag += '-';
    tag.append(digits, std::to_chars(digits, digits + 20, found->modified_ns, 16).ptr);
    return tag;
  }() + "\"";
  const std::string modified = detail::http_date(found->modified);
  // On what a cache may keep: 200, 206 and 304 (not a 416).
  const auto with_validators = [&](Response response) {
    response.set_header("ETag", etag);
    response.set_header("Last-Modified", modified);
    if (folder.options.max_age)
      response.set_header("Cache-Control",
                          "public, max-age=" + std::to_string(folder.options.max_age->count()));
    return response;
  };

  // Conditional requests (RFC 9110 §13.2.2): If-None-Match first; If-Modified-Since only
  // without it.
  const char* type = content_type_for(found->extension);
  // Its type is not sent (a 304 has no body), but middleware reads it: compression gives a 304
  // the Vary and ETag of the 200 it stands for.
  const auto not_modified = [&] { return Response(304, {}, type); };
  std::string joined;
  if (const auto tags = request.header_list("If-None-Match", joined)) {
    if (none_match(*tags, etag)) return with_validators(not_modified());
  } else if (const auto since = request.header("If-Modified-Since")) {
    const auto date = detail::parse_http_date(*since);
    if (date && found->modified <= *date) return with_validators(not_modified());
  }

  std::uint64_t first = 0, length = found->size;
  int status = 200;
  std::string content_range;
  const auto range_header = request.header("Range");
  const auto if_range = request.header("If-Range");
  // An If-Range that is not this file's (strong) tag or date: the whole file, as it is now.
  const bool range_applies = !if_range || *if_range == etag || *if_range == modified;
  if (range_header && range_applies) {
    if (const auto range = parse_range(*range_header, found->size)) {
      if (!*range) {
        Response refused = Response::error(416, "range_not_satisfiable",
                                           "the range asked for is past the end of the file");
        refused.set_header("Content-Range", "bytes */" + std::to_string(found->size));
        return refused;
      }
      first = (*range)->first;
      length = (*range)->last - first + 1;
      status = 206;
      content_range = "bytes " + std::to_string(first) + "-" + std::to_string((*range)->last) +
                      "/" + std::to_string(found->size);
    }
  }

  Response response;
  if (length <= folder.options.piece_bytes && request.method() != "HEAD") {
    response = Response(status, found->file->read(first, length), type);
  } else {
    // HEAD pulls nothing: the length is all it sends.
    struct Sending {
      std::shared_ptr<OpenFile> file;
      std::uint64_t offset;
      std::uint64_t left;
      std::size_t piece;
    };
    auto sending = std::make_shared<Sending>(
        Sending{found->file, first, length, std::max<std::size_t>(folder.options.piece_bytes, 1)});
    response = Response::stream(
        [sending]() -> boost::asio::awaitable<std::optional<std::string>> {
          if (sending->left == 0) co_return std::nullopt;
          const auto size =
              static_cast<std::size_t>(std::min<std::uint64_t>(sending->left, sending->piece));
          std::string piece = sending->file->read(sending->offset, size);
          sending->offset += size;
          sending->left -= size;
          co_return piece;
        },
        std::string(type), status);
    response.set_stream_length(length);
  }
  response.set_header("Accept-Ranges", "bytes");
  if (!content_range.empty()) response.set_header("Content-Range", content_range);
  return with_validators(std::move(response));
}

}  // namespace

Handler static_files(fs::path folder, StaticOptions options) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw std::invalid_argument("static_files: '" + folder.string() + "' is not a folder");
  auto shared = std::make_shared<const Folder>(Folder{std::move(folder), std::move(options)});
  return answering_at_once(
      [shared](const Request& request, Ctx& ctx) { return serve(*shared, request, ctx); });
}

void serve_files(App& app, std::string_view prefix, fs::path folder, StaticOptions options) {
  std::string base(prefix);
  while (!base.empty() && base.back() == '/') base.pop_back();
  const bool index_html = options.index_html;
  Handler handler = static_files(std::move(folder), std::move(options));
  const RouteOptions hidden{.doc = RouteDoc().hidden()};
  app.get(base + "/{path:path}", handler, {}, hidden);
  if (index_html) app.get(base + "/", handler, {}, hidden);
}

}  // namespace molt::web
