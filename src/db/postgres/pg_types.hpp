#pragma once
// The PostgreSQL type OIDs molt::db knows. They are fixed in the server's catalog
// (pg_type.dat) and identical on every server version we support; defined here so that
// the codecs need no libpq headers. Checked against a PostgreSQL 15 server with
// `select typname, oid, typarray from pg_type`.

#include <cstdint>

namespace molt::db::pg {

enum Oid : std::uint32_t {
  kUnspecified = 0,  // a parameter whose type the server infers
  kBool = 16,
  kBytea = 17,
  kChar = 18,
  kName = 19,
  kInt8 = 20,
  kInt2 = 21,
  kInt4 = 23,
  kText = 25,
  kOid = 26,
  kJson = 114,
  kFloat4 = 700,
  kFloat8 = 701,
  kBpchar = 1042,
  kVarchar = 1043,
  kDate = 1082,
  kTime = 1083,
  kTimestamp = 1114,
  kTimestamptz = 1184,
  kInterval = 1186,
  kNumeric = 1700,
  kUuid = 2950,
  kJsonb = 3802,

  // The one-dimensional array types of the scalars above (pg_type.typarray).
  kBoolArray = 1000,
  kByteaArray = 1001,
  kCharArray = 1002,
  kNameArray = 1003,
  kInt2Array = 1005,
  kInt4Array = 1007,
  kTextArray = 1009,
  kBpcharArray = 1014,
  kVarcharArray = 1015,
  kInt8Array = 1016,
  kFloat4Array = 1021,
  kFloat8Array = 1022,
  kOidArray = 1028,
  kTimestampArray = 1115,
  kDateArray = 1182,
  kTimeArray = 1183,
  kTimestamptzArray = 1185,
  kIntervalArray = 1187,
  kNumericArray = 1231,
  kJsonArray = 199,
  kUuidArray = 2951,
  kJsonbArray = 3807,
};

}  // namespace molt::db::pg
