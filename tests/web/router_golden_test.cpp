// Runs the golden routing table in tests/web/golden/routing.txt: a route table and requests
// with the expected match, in a format a reviewer can read without the code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "molt/web/router.hpp"

namespace {

using molt::web::RouteMatch;
using molt::web::Router;

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::string describe(const RouteMatch& match, const std::vector<std::string>& names) {
  switch (match.outcome()) {
    case RouteMatch::Outcome::NotFound:
      return "404";
    case RouteMatch::Outcome::BadPath:
      return "400";
    case RouteMatch::Outcome::MethodNotAllowed:
      return "405 Allow: " + std::string(match.allow());
    case RouteMatch::Outcome::Options:
      return "204 Allow: " + std::string(match.allow());
    case RouteMatch::Outcome::Found:
      break;
  }
  std::string text = names.at(match.route());
  if (match.head_from_get()) text += " (head)";
  for (std::size_t i = 0; i < match.param_count(); ++i) {
    const auto [name, value] = match.param_at(i);
    text.append(" ").append(name).append("=\"").append(value).append("\"");
  }
  return text;
}

TEST(RouterGoldenTest, RoutingTable) {
  const std::string path = std::string(MOLT_WEB_GOLDEN_DIR) + "/routing.txt";
  std::ifstream file(path);
  ASSERT_TRUE(file) << "cannot open " << path;
  Router router;
  std::vector<std::string> names;
  std::string line;
  int line_number = 0, requests = 0;
  while (std::getline(file, line)) {
    ++line_number;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::istringstream words(line);
    std::string first, second, third;
    words >> first >> second;
    if (first == "route") {
      words >> third;
      std::string name;
      words >> name;
      router.add(second, third, names.size(), name);
      names.push_back(name);
      continue;
    }
    const auto arrow = line.find("=>");
    ASSERT_NE(arrow, std::string::npos) << "line " << line_number << ": no '=>'";
    const std::string expected = trim(line.substr(arrow + 2));
    EXPECT_EQ(describe(router.match(first, second), names), expected)
        << "line " << line_number << ": " << first << " " << second;
    ++requests;
  }
  EXPECT_GT(requests, 40);  // the file was really read
}

}  // namespace
