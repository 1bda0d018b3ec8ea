#include "molt/ipc/manifest.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace molt::ipc {
namespace {

std::string parse_error(std::string_view text) {
  try {
    parse_manifest(text);
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

TEST(ManifestTest, ParsesTheDesignExample) {
  const Manifest m = parse_manifest(
      R"({"abi_version": "0.1",
          "exports": [{"name": "list_items", "codec_in": "msgpack", "codec_out": "json"}]})");
  EXPECT_EQ(m.abi_version, "0.1");
  ASSERT_EQ(m.exports.size(), 1u);
  EXPECT_EQ(m.exports[0].name, "list_items");
  EXPECT_EQ(m.exports[0].codec_in, Codec::MsgPack);
  EXPECT_EQ(m.exports[0].codec_out, Codec::Json);
}

TEST(ManifestTest, FindByName) {
  const Manifest m = parse_manifest(
      R"({"abi_version":"0.1","exports":[
            {"name":"a","codec_in":"raw","codec_out":"arrow_ipc"},
            {"name":"b","codec_in":"json","codec_out":"msgpack"}]})");
  ASSERT_NE(m.find("b"), nullptr);
  EXPECT_EQ(m.find("b")->codec_in, Codec::Json);
  ASSERT_NE(m.find("a"), nullptr);
  EXPECT_EQ(m.find("a")->codec_out, Codec::ArrowIpc);
  EXPECT_EQ(m.find("c"), nullptr);
  EXPECT_EQ(m.find(""), nullptr);
  EXPECT_EQ(m.find("__ping__"), nullptr);
}

TEST(ManifestTest, EmptyExportListAndUnknownKeysAreFine) {
  const Manifest m =
      parse_manifest(R"({"abi_version":"0.1","exports":[],"generator":"cmake","x":{"y":1}})");
  EXPECT_TRUE(m.exports.empty());
}

TEST(ManifestTest, RefusesAnEmptyName) {
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1","exports":[
              {"name":"","codec_in":"raw","codec_out":"raw"}]})"),
            "manifest: an export has an empty name");
}

TEST(ManifestTest, RefusesReservedNames) {
  for (const char* name : {"__ping__", "__cancel__", "__x", "__"}) {
    const std::string error =
        parse_error(std::string(R"({"abi_version":"0.1","exports":[{"name":")") + name +
                    R"(","codec_in":"raw","codec_out":"raw"}]})");
    EXPECT_NE(error.find(name), std::string::npos) << error;
    EXPECT_NE(error.find("reserved"), std::string::npos) << error;
  }
  // One underscore, or underscores elsewhere, are ordinary names.
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1","exports":[
              {"name":"_private","codec_in":"raw","codec_out":"raw"},
              {"name":"a__b__","codec_in":"raw","codec_out":"raw"}]})"),
            "");
}

TEST(ManifestTest, RefusesDuplicates) {
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1","exports":[
              {"name":"dup","codec_in":"raw","codec_out":"raw"},
              {"name":"other","codec_in":"raw","codec_out":"raw"},
              {"name":"dup","codec_in":"json","codec_out":"json"}]})"),
            "manifest: export 'dup' is listed twice");
}

TEST(ManifestTest, RefusesUnknownCodecsNamingTheExportAndField) {
  const std::string in = parse_error(R"({"abi_version":"0.1","exports":[
      {"name":"e1","codec_in":"protobuf","codec_out":"raw"}]})");
  EXPECT_NE(in.find("'e1'"), std::string::npos) << in;
  EXPECT_NE(in.find("codec_in"), std::string::npos) << in;
  EXPECT_NE(in.find("'protobuf'"), std::string::npos) << in;
  const std::string out = parse_error(R"({"abi_version":"0.1","exports":[
      {"name":"e2","codec_in":"raw","codec_out":"JSON"}]})");
  EXPECT_NE(out.find("'e2'"), std::string::npos) << out;
  EXPECT_NE(out.find("codec_out"), std::string::npos) << out;
}

TEST(ManifestTest, RefusesOtherAbiVersions) {
  for (const char* version : {"0.2", "1.0", "", "0.1 "}) {
    const std::string error =
        parse_error(std::string(R"({"abi_version":")") + version + R"(","exports":[]})");
    EXPECT_NE(error.find("abi_version"), std::string::npos) << error;
  }
  EXPECT_NE(parse_error(R"({"abi_version":0.1,"exports":[]})"), "");
  EXPECT_NE(parse_error(R"({"exports":[]})").find("abi_version"), std::string::npos);
}

TEST(ManifestTest, RefusesWrongShapesWithThePath) {
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1"})"),
            "manifest: manifest.exports: expected array, got nothing (the field is required)");
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1","exports":{}})"),
            "manifest: manifest.exports: expected array, got object");
  EXPECT_EQ(parse_error(R"({"abi_version":"0.1","exports":[{"name":"a","codec_in":"raw"}]})"),
            "manifest: manifest.exports[0].codec_out: expected string, got nothing (the field is "
            "required)");
  EXPECT_EQ(parse_error("[]"), "manifest: manifest: expected object, got array");
}

TEST(ManifestTest, RefusesTextThatIsNotJson) {
  for (const char* text : {"", "abi_version = 0.1", R"({"abi_version":"0.1","exports":[]} extra)",
                           R"({"abi_version":"0.1","exports":[})"}) {
    const std::string error = parse_error(text);
    EXPECT_EQ(error.rfind("manifest: ", 0), 0u) << error;
    EXPECT_NE(error.find("invalid JSON"), std::string::npos) << error;
  }
}

TEST(ManifestTest, ToJsonRoundTrips) {
  Manifest m;
  m.exports = {{"list_items", Codec::MsgPack, Codec::Json},
               {"raw_echo", Codec::Raw, Codec::Raw},
               {"arrow", Codec::ArrowIpc, Codec::MsgPack},
               {"quote\"name", Codec::Json, Codec::Json}};
  const std::string text = to_json(m);
  const Manifest back = parse_manifest(text);
  EXPECT_EQ(back.abi_version, "0.1");
  ASSERT_EQ(back.exports.size(), m.exports.size());
  for (std::size_t i = 0; i < m.exports.size(); ++i) {
    EXPECT_EQ(back.exports[i].name, m.exports[i].name);
    EXPECT_EQ(back.exports[i].codec_in, m.exports[i].codec_in);
    EXPECT_EQ(back.exports[i].codec_out, m.exports[i].codec_out);
  }
  EXPECT_NE(text.find(R"("codec_in":"arrow_ipc")"), std::string::npos) << text;
  EXPECT_EQ(to_json(back), text);
}

TEST(ManifestTest, EmptyManifestToJsonRoundTrips) {
  const Manifest back = parse_manifest(to_json(Manifest{}));
  EXPECT_EQ(back.abi_version, kAbiVersion);
  EXPECT_TRUE(back.exports.empty());
}

class ManifestFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("molt_manifest_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ManifestFileTest, LoadsAFile) {
  Manifest m;
  m.exports = {{"e", Codec::Json, Codec::Raw}};
  const Manifest back = load_manifest_file(write("ok.json", to_json(m)));
  ASSERT_EQ(back.exports.size(), 1u);
  EXPECT_EQ(back.exports[0].name, "e");
}

TEST_F(ManifestFileTest, MissingFileIsAnErrorNamingThePath) {
  const std::string path = (dir_ / "absent.json").string();
  try {
    load_manifest_file(path);
    FAIL() << "no throw";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST_F(ManifestFileTest, InvalidContentIsAnErrorNamingThePath) {
  const std::string path = write("bad.json", R"({"abi_version":"9","exports":[]})");
  try {
    load_manifest_file(path);
    FAIL() << "no throw";
  } catch (const core::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(path, 0), 0u) << what;
    EXPECT_NE(what.find("abi_version"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace molt::ipc
