#pragma once
// Rows into described structs, by column name: each member reads the column of its own name,
// with Rows::get's rules (std::optional for a nullable column). Columns no member names are
// left alone; a member whose column the result lacks is an error naming both.
//
//   struct Item {
//     std::int64_t id = 0;
//     std::string title;
//     std::optional<double> price;
//   };
//   BOOST_DESCRIBE_STRUCT(Item, (), (id, title, price))
//
//   const std::vector<Item> items =
//       molt::db::rows_as<Item>(db->query("SELECT id, title, price FROM items"));

#include <array>
#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <vector>

#include "molt/db/rows.hpp"

namespace molt::db {

namespace detail {
[[noreturn]] void missing_member_column(std::string_view member, const Rows& rows);

template <class T>
using DescribedMembers = boost::describe::describe_members<T, boost::describe::mod_public>;

// Where each member's column is in `rows`, in the members' order.
template <class T>
std::array<std::size_t, boost::mp11::mp_size<DescribedMembers<T>>::value> member_columns(
    const Rows& rows) {
  std::array<std::size_t, boost::mp11::mp_size<DescribedMembers<T>>::value> out{};
  std::size_t i = 0;
  boost::mp11::mp_for_each<DescribedMembers<T>>([&](auto member) {
    const auto index = rows.column_index(member.name);
    if (!index) missing_member_column(member.name, rows);
    out[i++] = *index;
  });
  return out;
}

template <class T, class Columns>
T read_row(const Rows& rows, std::size_t row, const Columns& columns) {
  T out{};
  std::size_t i = 0;
  boost::mp11::mp_for_each<DescribedMembers<T>>([&](auto member) {
    using Member = std::remove_cvref_t<decltype(out.*member.pointer)>;
    out.*member.pointer = cell_as<Member>(rows.at(row, columns[i++]), member.name);
  });
  return out;
}
}  // namespace detail

// Row `row` of `rows` as a T.
template <class T>
T row_as(const Rows& rows, std::size_t row) {
  static_assert(boost::describe::has_describe_members<T>::value,
                "row_as<T>: describe T's members (BOOST_DESCRIBE_STRUCT)");
  return detail::read_row<T>(rows, row, detail::member_columns<T>(rows));
}

// Every row of `rows` as a T, the columns looked up once.
template <class T>
std::vector<T> rows_as(const Rows& rows) {
  static_assert(boost::describe::has_describe_members<T>::value,
                "rows_as<T>: describe T's members (BOOST_DESCRIBE_STRUCT)");
  const auto columns = detail::member_columns<T>(rows);
  std::vector<T> out;
  out.reserve(rows.size());
  for (std::size_t row = 0; row < rows.size(); ++row)
    out.push_back(detail::read_row<T>(rows, row, columns));
  return out;
}

}  // namespace molt::db
