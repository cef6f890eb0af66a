// Expression language (sdk/include/sluice/expr.hpp): compile errors with exact messages and
// columns, evaluation truth tables over every field type, and the settings cache.
#include "sluice/expr.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace sluice::expr {
namespace {

// A host that only serves settings, counting reads so tests can see when the cache refreshes.
class FakeSettings {
 public:
  FakeSettings() {
    host_.abi_major = SLUICE_ABI_MAJOR;
    host_.abi_minor = SLUICE_ABI_MINOR;
    host_.ctx = this;
    host_.settings_version = [](void* ctx) { return static_cast<FakeSettings*>(ctx)->version_; };
    host_.setting_get = [](void* ctx, const char* name, char* buf, size_t cap) -> int64_t {
      auto* self = static_cast<FakeSettings*>(ctx);
      ++self->reads_;
      auto it = self->values_.find(name);
      if (it == self->values_.end()) return -1;
      std::memcpy(buf, it->second.data(), std::min(cap, it->second.size()));
      return static_cast<int64_t>(it->second.size());
    };
  }

  // Changes a setting the way the runtime does: new value, then a new version.
  void set(const std::string& name, const nlohmann::json& value) {
    values_[name] = value.dump();
    ++version_;
  }
  void erase(const std::string& name) {
    values_.erase(name);
    ++version_;
  }
  // Changes the stored value without announcing it (to prove the version gates re-reads).
  void set_silently(const std::string& name, const nlohmann::json& value) {
    values_[name] = value.dump();
  }
  const sluice_host* host() const { return &host_; }
  int reads() const { return reads_; }

 private:
  sluice_host host_{};
  std::map<std::string, std::string> values_;
  uint64_t version_ = 1;
  int reads_ = 0;
};

// One event with a field of every type, metadata and attributes.
class ExprEvalTest : public ::testing::Test {
 protected:
  ExprEvalTest() {
    b_.id(7)
        .event_time_ns(1761125802306000000)
        .ingest_time_ns(1761125802400000000)
        .source("binance")
        .key("BTCUSDT")
        .attr("tier", "gold")
        .attr("trace-id", "abc")
        .field("i", 42)
        .field("d", 2.5)
        .field("neg", -3)
        .field("tiny", 5.99e-05)
        .field("d_nan", std::numeric_limits<double>::quiet_NaN())
        .field("big_int", std::numeric_limits<int64_t>::max())
        .field("min_int", std::numeric_limits<int64_t>::min())
        .field("s", "SELL")
        .field("empty", "")
        .field("quote", "it's")
        .field("nl", "a\nb")
        .field("symbol", "币安人生USDT")
        .field("b_true", true)
        .field("b_false", false)
        .field("a.b", 1)
        .null_field("n");
    const char raw[] = R"({"s":"BTCUSDT"})";
    b_.bytes_field("raw", {reinterpret_cast<const uint8_t*>(raw), sizeof(raw) - 1});
    auto bytes = b_.finish();
    bytes_.assign(bytes.begin(), bytes.end());
  }

  bool eval(const std::string& text) {
    Expression e = Expression::compile(text);
    return e.matches(EventView(bytes_.data(), bytes_.size()));
  }

  struct Case {
    const char* text;
    bool expected;
  };
  void expect_all(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.text);
      EXPECT_EQ(eval(c.text), c.expected);
    }
  }

  EventBuilder b_;
  std::vector<uint8_t> bytes_;
};

TEST_F(ExprEvalTest, NumbersCompareNumericallyAcrossIntAndDouble) {
  expect_all({
      {"i == 42", true},
      {"i == 42.0", true},
      {"i != 42", false},
      {"i < 42.5", true},
      {"i <= 42", true},
      {"i >= 42", true},
      {"i > 42", false},
      {"d == 2.5", true},
      {"d < i", true},
      {"i > d", true},
      {"neg < -2", true},
      {"neg == -3", true},
      {"-3 == neg", true},
      {"tiny < 1e-04", true},
      {"tiny == 5.99e-05", true},
      {"tiny > 5.99E-5", false},
      {"big_int == 9223372036854775807", true},
      {"big_int > 9223372036854775806", true},
      {"min_int == -9223372036854775808", true},
  });
}

TEST_F(ExprEvalTest, StringsCompareBytewiseWithEscapes) {
  expect_all({
      {"s == \"SELL\"", true},
      {"s == 'SELL'", true},
      {"s != 'BUY'", true},
      {"s < 'TAKE'", true},
      {"s > 'SELLS'", false},
      {"s >= 'SELL'", true},
      {"empty == ''", true},
      {"quote == 'it\\'s'", true},
      {"quote == \"it's\"", true},
      {"nl == \"a\\nb\"", true},
      {"symbol == '币安人生USDT'", true},
      {"symbol ends_with 'USDT'", true},
  });
}

TEST_F(ExprEvalTest, MismatchedTypesAtRunTimeAreUnequalAndUnordered) {
  expect_all({
      {"i == '42'", false},
      {"i != '42'", true},
      {"s < 5", false},
      {"s >= 5", false},
      {"b_true == 1", false},
      {"b_true < 2", false},
      {"s < b_true", false},
  });
}

TEST_F(ExprEvalTest, BareFieldIsTrueOnlyForBooleanTrue) {
  expect_all({
      {"b_true", true},
      {"b_false", false},
      {"!b_false", true},
      {"not b_true", false},
      {"b_true == true", true},
      {"b_false != true", true},
      {"i", false},
      {"s", false},
      {"missing", false},
      {"!missing", true},
  });
}

TEST_F(ExprEvalTest, MissingFieldIsNullAndOnlyEqualsNull) {
  expect_all({
      {"missing == null", true},
      {"missing != null", false},
      {"missing == 1", false},
      {"missing != 1", true},
      {"missing < 1", false},
      {"missing >= 1", false},
      {"missing == missing2", true},
      {"missing == i", false},
      {"missing != i", true},
      {"missing in [1, 2]", false},
      {"missing in [null]", true},
      {"missing not in [1, 2]", true},
      {"missing contains 'x'", false},
      {"n == null", true},
      {"i != null", true},
      {"i == null", false},
      {"null == null", true},
  });
}

TEST_F(ExprEvalTest, NanIsUnorderedAndUnequal) {
  expect_all({
      {"d_nan == d_nan", false},
      {"d_nan != 1", true},
      {"d_nan < 1", false},
      {"d_nan >= 1", false},
  });
}

TEST_F(ExprEvalTest, InListsUseEquality) {
  expect_all({
      {"s in ['BUY', 'SELL']", true},
      {"s in ['BUY', 'SELL',]", true},
      {"s not in ['BUY', 'SELL']", false},
      {"s in ['sell']", false},
      {"i in [1, 42]", true},
      {"i in [42.0]", true},
      {"d in [1, 2]", false},
      {"neg in [-3]", true},
      {"s in []", false},
      {"s not in []", true},
      {"i in ['42']", false},
  });
}

TEST_F(ExprEvalTest, StringOperatorsNeedStringsAndReadBytesFields) {
  expect_all({
      {"s contains 'EL'", true},
      {"s contains ''", true},
      {"s contains 'el'", false},
      {"s starts_with 'SE'", true},
      {"s starts_with 'EL'", false},
      {"s ends_with 'LL'", true},
      {"s ends_with 'SE'", false},
      {"raw contains 'BTCUSDT'", true},
      {"i contains '4'", false},
      {"s contains i", false},
      {"symbol contains '人生'", true},
  });
}

TEST_F(ExprEvalTest, MetadataReadsKeySourceIdTimesAndAttrs) {
  expect_all({
      {"@key == 'BTCUSDT'", true},
      {"@key starts_with 'BTC'", true},
      {"@source == 'binance'", true},
      {"@id == 7", true},
      {"@event_time_ns == 1761125802306000000", true},
      {"@ingest_time_ns > @event_time_ns", true},
      {"@attr.tier == 'gold'", true},
      {"@attr.trace-id == 'abc'", true},
      {"@attr.missing == null", true},
      {"@attr.missing != 'x'", true},
      {"@attr.tier in ['gold', 'silver']", true},
  });
}

TEST_F(ExprEvalTest, LogicPrecedenceAndKeywordAliases) {
  expect_all({
      {"i > 40 && s == 'SELL'", true},
      {"i > 40 and s == 'BUY'", false},
      {"i > 50 || s == 'SELL'", true},
      {"i > 50 or s == 'BUY'", false},
      {"not (i > 50)", true},
      {"!(i > 40 && d > 3)", true},
      // `!` negates the whole test after it, as `not` does in Python and SQL.
      {"!i == 42", false},
      {"not s in ['SELL']", false},
      // && binds tighter than ||.
      {"i > 50 && d > 1 || s == 'SELL'", true},
      {"i > 50 && (d > 1 || s == 'SELL')", false},
      {"s == 'BUY' || i == 42 && d == 2.5", true},
      {"(s == 'BUY' || i == 42) && d == 3", false},
      {"!!b_true", true},
      {"a.b == 1", true},
      {"i==42&&s=='SELL'", true},
      {"\ti == 42\n && s == 'SELL' ", true},
  });
}

TEST_F(ExprEvalTest, ConstantsFoldWithoutChangingMeaning) {
  expect_all({
      {"true", true},
      {"false", false},
      {"1 < 2", true},
      {"'a' < 'b'", true},
      {"1 == 1.0", true},
      {"'x' in ['y', 'x']", true},
      {"'abc' contains 'b'", true},
      {"true && i == 42", true},
      {"i == 42 && false", false},
      {"false || i == 42", true},
      {"i == 41 || true", true},
      {"!(1 > 2) && !false", true},
      {"false || false", false},
  });
}

TEST_F(ExprEvalTest, RandomInputEitherCompilesOrRaisesErrorNeverCrashes) {
  // Fragments of valid and broken syntax, glued at random with a fixed seed.
  const std::vector<std::string> pieces = {
      "i",     "s",   "d_nan", "missing", "@key",     "@attr.tier",  "@attr.", "@",
      "$x",    "$",   "42",    "-",       "2.5",      "1e",          "1e-3",   "'SELL'",
      "\"a\\", "'",   "\"",    "\\q",     "==",       "!=",          "<",      "<=",
      ">",     ">=",  "=",     "=<",      "&&",       "||",          "&",      "!",
      "not",   "and", "or",    "in",      "contains", "starts_with", "(",      ")",
      "[",     "]",   ",",     "true",    "null",     " ",           "#",      "é"};
  std::mt19937 rng(20251022);
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1);
  std::uniform_int_distribution<int> length(1, 12);
  EventView ev(bytes_.data(), bytes_.size());
  int compiled = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string text;
    for (int k = length(rng); k > 0; --k) text += pieces[pick(rng)] + (rng() % 2 ? " " : "");
    try {
      Expression e = Expression::compile(text);
      e.matches(ev);
      ++compiled;
    } catch (const Error& err) {
      ASSERT_GE(err.column, 1u) << text;
      ASSERT_LE(err.column, text.size() + 1) << text;
      ASSERT_NE(err.message.find(" at column " + std::to_string(err.column)), std::string::npos)
          << text << " → " << err.message;
    }
  }
  EXPECT_GT(compiled, 0);
}

struct ErrorCase {
  const char* text;
  uint32_t column;
  const char* message;
};

TEST(ExprCompileTest, ErrorsNameTheProblemAndColumn) {
  const std::vector<ErrorCase> cases = {
      {"", 1, "expected an expression at column 1"},
      {"notional_usd >= ", 17, "expected an operand after '>=' at column 17"},
      {"notional_usd >=", 16, "expected an operand after '>=' at column 16"},
      {"price >= && x", 10, "expected an operand after '>=' at column 10 but found '&&'"},
      {"a &&", 5, "expected an operand after '&&' at column 5"},
      {"&& a", 1, "expected an operand at column 1 but found '&&'"},
      {"!", 2, "expected an operand after '!' at column 2"},
      {"not", 4, "expected an operand after 'not' at column 4"},
      {"side == \"SEL", 9, "unterminated string starting at column 9"},
      {"side == 'it\\'s", 9, "unterminated string starting at column 9"},
      {"s == 'a\\", 6, "unterminated string starting at column 6"},
      {"s == 'a\\qb'", 8, "unknown escape '\\q' at column 8 (use \\\\, \\\", \\', \\n or \\t)"},
      {"a =< 5", 3, "unknown operator '=<' at column 3 (did you mean '<='?)"},
      {"a => 5", 3, "unknown operator '=>' at column 3 (did you mean '>='?)"},
      {"side = 'SELL'", 6, "unknown operator '=' at column 6 (did you mean '=='?)"},
      {"a === 1", 3, "unknown operator '===' at column 3 (did you mean '=='?)"},
      {"a !== 1", 3, "unknown operator '!==' at column 3 (did you mean '!='?)"},
      {"a <> 1", 3, "unknown operator '<>' at column 3 (did you mean '!='?)"},
      {"a & b", 3, "unknown operator '&' at column 3 (did you mean '&&'?)"},
      {"a | b", 3, "unknown operator '|' at column 3 (did you mean '||'?)"},
      {"a >< 1", 3, "unknown operator '><' at column 3"},
      {"price # 5", 7, "unexpected character '#' at column 7"},
      // Columns count characters, not bytes: 'é' is one column.
      {"s == 'é' && x ≥ 5", 15, "unexpected character '≥' at column 15"},
      {"a < b < c", 7,
       "comparisons cannot be chained at column 7 (join them with '&&', e.g. 'a < b && b < c')"},
      {"(a > 1", 7, "expected ')' at column 7 to close the '(' at column 1"},
      {"a > 1)", 6, "unexpected ')' at column 6 (no '(' to close)"},
      {"(a > 1 b)", 8, "unexpected 'b' at column 8 (expected '&&', '||' or ')')"},
      {"a > 1 b", 7, "unexpected 'b' at column 7 (expected '&&', '||' or the end)"},
      {"a > 1 AND b", 7, "unexpected 'AND' at column 7 (did you mean 'and'?)"},
      {"(a) == 1", 5,
       "unexpected '==' at column 5 (a condition in parentheses cannot be compared)"},
      {"side 'SELL'", 6, "expected an operator after 'side' at column 6 but found 'SELL'"},
      {"1 < 'a'", 3, "cannot compare a number with a string at column 3"},
      {"'a' == true", 5, "cannot compare a string with a boolean at column 5"},
      {"@key == 5", 6, "cannot compare a string with a number at column 6"},
      {"@id != 'x'", 5, "cannot compare a number with a string at column 5"},
      {"true < false", 6,
       "booleans have no order, so '<' cannot compare them at column 6 (use == or !=)"},
      {"x < null", 3, "'<' with null is always false at column 3 (use '== null' or '!= null')"},
      {"@key in ['a', 1]", 15, "cannot compare a string with a number in the list at column 15"},
      {"x in 'a'", 6,
       "expected '[' after 'in' at column 6 (a list of literals, e.g. 'side in [\"BUY\", "
       "\"SELL\"]')"},
      {"x in [a]", 7,
       "expected a literal in the list at column 7 but found 'a' (quote text: \"a\")"},
      {"x in [1 2]", 9, "expected ',' or ']' at column 9 but found '2'"},
      {"x in [1,", 9, "expected ']' at column 9 to close the '[' at column 6"},
      {"x contains 5", 3, "'contains' needs strings, but its right side is a number at column 3"},
      {"@id starts_with 'a'", 5,
       "'starts_with' needs strings, but its left side is a number at column 5"},
      {"5", 1, "a number is not a condition at column 1 (compare it, e.g. 'price > 5')"},
      {"'x'", 1, "a string is not a condition at column 1 (compare it, e.g. 'price > 5')"},
      {"null", 1, "null is not a condition at column 1 (compare it, e.g. 'price > 5')"},
      {"@key", 1,
       "'@key' is a string, not a condition at column 1 (compare it, e.g. '@key == \"...\"')"},
      {"@foo == 1", 1,
       "unknown metadata '@foo' at column 1 (use @key, @source, @id, @event_time_ns, "
       "@ingest_time_ns or @attr.NAME)"},
      {"@attr == 1", 1, "expected an attribute name in '@attr' at column 1 (e.g. '@attr.tier')"},
      {"@ == 1", 1, "expected a metadata name after '@' at column 1"},
      {"$ > 1", 1, "expected a setting name after '$' at column 1"},
      {"x > $min_usd", 5, "unknown setting '$min_usd' at column 5"},
      // The leftmost mistake is reported, even when a later one is a lexing error.
      {"x > $min && side = 'SELL'", 5, "unknown setting '$min' at column 5"},
      {"1 < 'a' || s = 1", 3, "cannot compare a number with a string at column 3"},
      {"x > && s == 'a", 5, "expected an operand after '>' at column 5 but found '&&'"},
      {"price > 1.2.3", 9, "invalid number '1.2.3' at column 9"},
      {"price > 12abc", 9, "invalid number '12abc' at column 9"},
      {"price > 1e", 9, "invalid number '1e' at column 9"},
      {"price > 99999999999999999999", 9,
       "integer 99999999999999999999 is out of range at column 9"},
      {"price > 9223372036854775808", 9, "integer 9223372036854775808 is out of range at column 9"},
      {"price > 1e999", 9, "number 1e999 is out of range at column 9"},
      {"price > -x", 10, "expected a number after '-' at column 10 but found 'x'"},
      {"s == 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' \"b\"", 39,
       "unexpected \"b\" at column 39 (expected '&&', '||' or the end)"},
      {"s 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'", 3,
       "expected an operator after 's' at column 3 but found 'aaaaaaaaaaaaaaaaaaaaaaa...'"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.text);
    try {
      Expression::compile(c.text);
      ADD_FAILURE() << "compiled without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.message, c.message);
      EXPECT_EQ(e.column, c.column);
      EXPECT_STREQ(e.what(), c.message);
    }
  }
}

TEST(ExprCompileTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(300, '(');
  deep += "a";
  try {
    Expression::compile(deep);
    FAIL() << "compiled without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.message, "expression nests too deeply at column 201");
    EXPECT_EQ(e.column, 201u);
  }
  std::string nots;
  for (int i = 0; i < 300; ++i) nots += "!";
  EXPECT_THROW(Expression::compile(nots + "a"), Error);
}

TEST(ExprCompileTest, LongChainsCompileAndEvaluate) {
  // && chains are one flat node, so a long generated filter neither recurses deeply nor fails.
  std::string text = "i == 0";
  for (int k = 1; k < 5000; ++k) text += " || i == " + std::to_string(k);
  Expression e = Expression::compile(text);
  EventBuilder b;
  auto bytes = b.field("i", 4999).finish();
  EXPECT_TRUE(e.matches(EventView(bytes)));
  auto other = b.reset().field("i", 5000).finish();
  EXPECT_FALSE(e.matches(EventView(other)));
}

TEST(ExprCompileTest, KeepsItsSourceText) {
  Expression e = Expression::compile("a == 1");
  EXPECT_EQ(e.text(), "a == 1");
  EXPECT_FALSE(e.uses_settings());
}

class ExprSettingsTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> event(double notional, const char* side) {
    EventBuilder b;
    auto bytes = b.field("notional_usd", notional).field("side", side).finish();
    return {bytes.begin(), bytes.end()};
  }
  bool matches(Expression& e, const std::vector<uint8_t>& bytes) {
    return e.matches(EventView(bytes.data(), bytes.size()));
  }
  FakeSettings settings_;
};

TEST_F(ExprSettingsTest, ChangedSettingTakesEffectAfterVersionChange) {
  settings_.set("min_usd", 1000);
  Expression e =
      Expression::compile("notional_usd >= $min_usd && side == 'SELL'", settings_.host());
  EXPECT_TRUE(e.uses_settings());
  auto ev = event(1500, "SELL");
  EXPECT_TRUE(matches(e, ev));
  settings_.set("min_usd", 2000);
  EXPECT_FALSE(matches(e, ev));
  settings_.set("min_usd", 1499.5);
  EXPECT_TRUE(matches(e, ev));
}

TEST_F(ExprSettingsTest, ReReadsSettingsOnlyWhenVersionChanges) {
  settings_.set("min_usd", 1000);
  Expression e = Expression::compile("notional_usd >= $min_usd", settings_.host());
  auto ev = event(1500, "SELL");
  int reads_after_compile = settings_.reads();
  for (int k = 0; k < 100; ++k) EXPECT_TRUE(matches(e, ev));
  EXPECT_EQ(settings_.reads(), reads_after_compile);
  // Without a version bump the cached value stays in force.
  settings_.set_silently("min_usd", 5000);
  EXPECT_TRUE(matches(e, ev));
  settings_.set("other", 1);
  EXPECT_FALSE(matches(e, ev));
  EXPECT_EQ(settings_.reads(), reads_after_compile + 1);
}

TEST_F(ExprSettingsTest, SameSettingTwiceIsReadOnce) {
  settings_.set("floor", 10);
  int reads = settings_.reads();
  Expression e = Expression::compile("notional_usd > $floor || $floor == 0", settings_.host());
  EXPECT_EQ(settings_.reads(), reads + 1);
  EXPECT_FALSE(matches(e, event(5, "BUY")));
  settings_.set("floor", 0);
  EXPECT_TRUE(matches(e, event(5, "BUY")));
  EXPECT_EQ(settings_.reads(), reads + 2);
}

TEST_F(ExprSettingsTest, StringAndBooleanSettings) {
  settings_.set("side", "SELL");
  settings_.set("enabled", true);
  Expression e = Expression::compile("$enabled && side == $side", settings_.host());
  EXPECT_TRUE(matches(e, event(1, "SELL")));
  EXPECT_FALSE(matches(e, event(1, "BUY")));
  settings_.set("enabled", false);
  EXPECT_FALSE(matches(e, event(1, "SELL")));
}

TEST_F(ExprSettingsTest, RemovedSettingReadsAsNull) {
  settings_.set("min_usd", 1000);
  Expression e = Expression::compile("notional_usd >= $min_usd", settings_.host());
  Expression missing = Expression::compile("$min_usd == null", settings_.host());
  auto ev = event(1500, "SELL");
  EXPECT_TRUE(matches(e, ev));
  EXPECT_FALSE(matches(missing, ev));
  settings_.erase("min_usd");
  EXPECT_FALSE(matches(e, ev));
  EXPECT_TRUE(matches(missing, ev));
  settings_.set("min_usd", 10);
  EXPECT_TRUE(matches(e, ev));
}

TEST_F(ExprSettingsTest, CompileErrorsForUnknownOrUncomparableSettings) {
  settings_.set("min_usd", 1000);
  settings_.set("symbols", nlohmann::json::array({"BTCUSDT"}));
  const std::vector<ErrorCase> cases = {
      {"notional_usd >= $min", 17, "unknown setting '$min' at column 17"},
      {"symbol == $symbols", 11,
       "setting '$symbols' is a list, which an expression cannot compare at column 11"},
      {"$min_usd == 'x'", 10, "cannot compare a number with a string at column 10"},
      {"$min_usd", 1,
       "'$min_usd' is a number, not a condition at column 1 (compare it, e.g. '$min_usd > 0')"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.text);
    try {
      Expression::compile(c.text, settings_.host());
      ADD_FAILURE() << "compiled without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.message, c.message);
      EXPECT_EQ(e.column, c.column);
    }
  }
}

TEST_F(ExprSettingsTest, ExpressionWithoutSettingsNeverAsksTheHost) {
  Expression e = Expression::compile("notional_usd >= 10", settings_.host());
  int reads = settings_.reads();
  settings_.set("min_usd", 1);
  EXPECT_TRUE(matches(e, event(20, "BUY")));
  EXPECT_EQ(settings_.reads(), reads);
}

}  // namespace
}  // namespace sluice::expr
