// uploads: files of any size stored as they arrive, the sample of multipart.hpp. A form posted
// to /files has its files written to the folder piece by piece (never whole in memory) under
// names the server picks, and its text fields read as text; the answer lists what was stored.
// A file is written as <id>.part and renamed to <id> only once the whole form has arrived, so
// an upload cut short or malformed leaves nothing behind. The page at / posts such a form.
//
//   uploads [--port 8083] [--dir uploads] [--max-mib 1024]
//   curl -F title=holiday -F photo=@beach.jpg http://127.0.0.1:8083/files
#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/describe.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "molt/web/middleware.hpp"
#include "molt/web/multipart.hpp"
#include "molt/web/server.hpp"
#include "molt/web/typed.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::Ctx;
using molt::web::HttpError;
using molt::web::Request;
using molt::web::Response;
namespace fs = std::filesystem;

struct StoredFile {
  std::string field;
  std::string filename;  // the client's name for it, kept as data: never a path here
  std::string content_type;
  std::string id;  // its name in the folder
  std::uint64_t bytes = 0;
};
BOOST_DESCRIBE_STRUCT(StoredFile, (), (field, filename, content_type, id, bytes))

struct Stored {
  std::map<std::string, std::string> fields;
  std::vector<StoredFile> files;
};
BOOST_DESCRIBE_STRUCT(Stored, (), (fields, files))

struct Folder {
  fs::path path;
  std::atomic<std::uint64_t> next_id{0};

  // Unique across restarts (the start time) and within this run (a counter).
  std::string new_id() {
    static const auto started = std::chrono::system_clock::now().time_since_epoch().count();
    return std::to_string(started) + "-" + std::to_string(next_id++);
  }
};

// The files of one form being written: each <id>.part until keep() renames them all; whatever
// is not kept (an error, a client gone, a shutdown) is removed.
class PendingFiles {
 public:
  explicit PendingFiles(const fs::path& folder) : folder_(folder) {}
  PendingFiles(const PendingFiles&) = delete;
  PendingFiles& operator=(const PendingFiles&) = delete;
  ~PendingFiles() {
    if (file_) std::fclose(file_);
    std::error_code ignored;
    for (const std::string& id : ids_) fs::remove(part_path(id), ignored);
  }

  void open(std::string id) {
    finish_file();
    ids_.push_back(std::move(id));
    file_ = std::fopen(part_path(ids_.back()).c_str(), "wbx");
    if (!file_) throw HttpError(500, "storage_failed", "the file could not be created");
  }
  // Writes to the page cache, which is quick enough for the I/O thread; a slow disk would
  // want run_blocking.
  void write(std::string_view piece) {
    if (std::fwrite(piece.data(), 1, piece.size(), file_) != piece.size())
      throw HttpError(507, "insufficient_storage", "the file could not be stored");
  }
  // All of them or none: a rename that fails takes back those done before it.
  void keep() {
    finish_file();
    std::size_t renamed = 0;
    try {
      for (; renamed < ids_.size(); ++renamed)
        fs::rename(part_path(ids_[renamed]), folder_ / ids_[renamed]);
    } catch (const fs::filesystem_error&) {
      std::error_code ignored;
      for (std::size_t i = 0; i < renamed; ++i)
        fs::rename(folder_ / ids_[i], part_path(ids_[i]), ignored);
      throw HttpError(507, "insufficient_storage", "the files could not be stored");
    }
    ids_.clear();
  }

 private:
  fs::path part_path(const std::string& id) const { return folder_ / (id + ".part"); }
  // Closes the file being written: its last bytes are written then.
  void finish_file() {
    std::FILE* file = std::exchange(file_, nullptr);
    if (file && std::fclose(file) != 0)
      throw HttpError(507, "insufficient_storage", "the file could not be stored");
  }

  fs::path folder_;
  std::vector<std::string> ids_;
  std::FILE* file_ = nullptr;
};

awaitable<Response> store_files(const Request& request, Ctx& ctx) {
  Folder& folder = ctx.state<Folder>();
  molt::web::MultipartReader parts(request, ctx.body());  // 415 unless multipart/form-data
  PendingFiles pending(folder.path);
  Stored stored;
  while (auto part = co_await parts.next_part()) {
    if (!part->is_file()) {
      stored.fields[part->name] = co_await parts.text(64 * 1024);  // 413 past 64 KiB
      continue;
    }
    StoredFile file{part->name, *part->filename, part->content_type, folder.new_id(), 0};
    pending.open(file.id);
    while (auto piece = co_await parts.read()) {
      pending.write(*piece);
      file.bytes += piece->size();
    }
    stored.files.push_back(std::move(file));
  }
  pending.keep();  // the whole form has arrived
  co_return molt::web::json(stored, 201);
}

constexpr std::string_view kPage = R"html(<!doctype html>
<meta charset="utf-8">
<title>uploads</title>
<form method="post" action="/files" enctype="multipart/form-data">
  <p><input name="title" placeholder="title"></p>
  <p><input type="file" name="file" multiple></p>
  <p><button>Upload</button></p>
</form>
)html";

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"uploads: files stored as they arrive"};
  molt::web::ServerOptions options;
  options.port = 8083;
  std::string dir = "uploads";
  std::uint64_t max_mib = 1024;
  cli.add_option("--port", options.port)->capture_default_str();
  cli.add_option("--dir", dir, "where the files go (created)")->capture_default_str();
  cli.add_option("--max-mib", max_mib, "the largest form, in MiB")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  try {
    fs::create_directories(dir);
    molt::web::Server::block_stop_signals();
    molt::web::App app;
    app.emplace_state<Folder>().path = dir;
    app.use(molt::web::access_log());
    app.get("/", [](const Request&, Ctx&) {
      return Response(200, std::string(kPage), "text/html; charset=utf-8");
    });
    app.post("/files", store_files, "files.store",
             {.max_body_bytes = max_mib << 20, .stream_body = true});
    molt::web::Server server(app, options);
    server.start();
    std::fprintf(stderr, "uploads: serving http://127.0.0.1:%u\n", unsigned(server.port()));
    server.wait_for_signal();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uploads: %s\n", e.what());
    return 1;
  }
}
