// Expression compiler: tokens → a flat Program with resolved names, pre-parsed constants and
// cached settings, checking types wherever both sides are known at compile time.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/expr/lexer.hpp"
#include "sluice/expr/value.hpp"
#include "sluice/sdk.hpp"

namespace sluice::expr {

namespace detail {

// Where an operand's value comes from.
enum class Src : uint8_t {
  kLiteral,
  kField,
  kSetting,
  kKey,
  kSource,
  kId,
  kEventTime,
  kIngestTime,
  kAttr,
};

struct Operand {
  Src src = Src::kLiteral;
  std::string name;   // field name, attribute name, setting name
  Constant constant;  // kLiteral
  uint32_t slot = 0;  // kSetting: index into Program::settings
};

enum class Op : uint8_t {
  kConst,       // value
  kAnd,         // nodes Program::children[a, a + count)
  kOr,          // nodes Program::children[a, a + count)
  kNot,         // node a
  kCompare,     // operands a cmp b
  kIn,          // operand a == any of operands [b, b + count)
  kContains,    // operands a, b
  kStartsWith,  // operands a, b
  kEndsWith,    // operands a, b
  kTruthy,      // operand a is the boolean true
};

struct Node {
  Op op = Op::kConst;
  Cmp cmp = Cmp::kEq;
  bool value = false;
  uint32_t a = 0;
  uint32_t b = 0;
  uint32_t count = 0;
};

struct Setting {
  std::string name;
  Constant value;
};

// A compiled expression. Nodes refer only to earlier nodes, so nesting depth is bounded by the
// source's own nesting (parentheses and `!`), which the compiler caps.
struct Program {
  std::vector<Node> nodes;
  std::vector<uint32_t> children;  // operands of kAnd / kOr, flattened: a && b && c is one node
  std::vector<Operand> operands;
  std::vector<Setting> settings;
  uint32_t root = 0;
};

// contains / starts_with / ends_with: false unless both sides are strings.
inline bool string_test(Op op, const Value& a, const Value& b) {
  if (a.type != Type::kString || b.type != Type::kString) return false;
  switch (op) {
    case Op::kContains:
      return a.s.find(b.s) != std::string_view::npos;
    case Op::kStartsWith:
      return a.s.starts_with(b.s);
    default:
      return a.s.ends_with(b.s);
  }
}

// Recursive descent over the token list. Grammar, loosest binding first:
//   or     := and (('||' | 'or') and)*
//   and    := unary (('&&' | 'and') unary)*
//   unary  := ('!' | 'not') unary | '(' or ')' | test
//   test   := operand [cmp operand | ['not'] 'in' list | ('contains' | 'starts_with' |
//             'ends_with') operand]
// `!` negates the whole test after it (as `not` does in Python and SQL): `!a == b` is
// `!(a == b)`.
class Compiler {
 public:
  Compiler(std::string_view src, const sluice_host* host) : src_(src), host_(host) {}

  Program compile() {
    tokens_ = Lexer(src_).tokenize();
    if (cur().kind == Tok::kEnd) fail(cur(), "expected an expression");
    prog_.root = parse_or();
    if (cur().kind != Tok::kEnd) unexpected(cur(), /*in_group=*/false);
    return std::move(prog_);
  }

 private:
  static constexpr int kMaxDepth = 200;

  // The current token; reaching a token the lexer could not read raises its error.
  const Token& cur() const {
    if (tokens_[i_].kind == Tok::kError) throw *tokens_[i_].error;
    return tokens_[i_];
  }
  const Token& advance() { return tokens_[i_++]; }

  [[noreturn]] void fail(const Token& at, const std::string& before,
                         const std::string& after = {}) const {
    uint32_t col = column_of(src_, at.offset);
    throw Error(col, before + " at column " + std::to_string(col) + after);
  }

  // A token where '&&', '||' or the end of the expression (or of a group) was expected.
  [[noreturn]] void unexpected(const Token& t, bool in_group) const {
    if (t.kind == Tok::kRParen && !in_group) fail(t, "unexpected ')'", " (no '(' to close)");
    if (t.kind == Tok::kIdent) {
      std::string lower;
      for (char c : t.text) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      for (std::string_view kw :
           {"and", "or", "not", "in", "contains", "starts_with", "ends_with"}) {
        if (lower == kw) {
          fail(t, "unexpected " + quote_token(t.text), " (did you mean '" + lower + "'?)");
        }
      }
    }
    fail(t, "unexpected " + quote_token(t.text),
         in_group ? " (expected '&&', '||' or ')')" : " (expected '&&', '||' or the end)");
  }

  [[noreturn]] void expected_operand(const Token& t) const {
    std::string before = "expected an operand";
    if (i_ > 0) before += " after " + quote_token(tokens_[i_ - 1].text);
    fail(t, before, t.kind == Tok::kEnd ? "" : " but found " + quote_token(t.text));
  }

  void enter(const Token& at) {
    if (++depth_ > kMaxDepth) fail(at, "expression nests too deeply");
  }

  uint32_t add(Node n) {
    prog_.nodes.push_back(n);
    return static_cast<uint32_t>(prog_.nodes.size() - 1);
  }
  uint32_t constant(bool v) {
    Node n;
    n.op = Op::kConst;
    n.value = v;
    return add(n);
  }
  const Node& node(uint32_t i) const { return prog_.nodes[i]; }
  bool literal(uint32_t operand) const { return prog_.operands[operand].src == Src::kLiteral; }
  Value literal_value(uint32_t operand) const { return prog_.operands[operand].constant.view(); }

  uint32_t negate(uint32_t inner) {
    if (node(inner).op == Op::kConst) return constant(!node(inner).value);
    Node n;
    n.op = Op::kNot;
    n.a = inner;
    return add(n);
  }

  // One n-ary node for a chain of && (or ||). Constants fold: `true && x` is x, and a
  // `false` anywhere in an && chain makes the whole chain false.
  uint32_t logical(Op op, const std::vector<uint32_t>& terms) {
    bool absorbing = op == Op::kOr;  // the value that decides the result on its own
    std::vector<uint32_t> kept;
    for (uint32_t t : terms) {
      if (node(t).op != Op::kConst) {
        kept.push_back(t);
      } else if (node(t).value == absorbing) {
        return constant(absorbing);
      }
    }
    if (kept.empty()) return constant(!absorbing);
    if (kept.size() == 1) return kept.front();
    Node n;
    n.op = op;
    n.a = static_cast<uint32_t>(prog_.children.size());
    n.count = static_cast<uint32_t>(kept.size());
    prog_.children.insert(prog_.children.end(), kept.begin(), kept.end());
    return add(n);
  }

  uint32_t parse_or() {
    std::vector<uint32_t> terms{parse_and()};
    while (cur().kind == Tok::kOr) {
      advance();
      terms.push_back(parse_and());
    }
    return terms.size() == 1 ? terms.front() : logical(Op::kOr, terms);
  }

  uint32_t parse_and() {
    std::vector<uint32_t> terms{parse_unary()};
    while (cur().kind == Tok::kAnd) {
      advance();
      terms.push_back(parse_unary());
    }
    return terms.size() == 1 ? terms.front() : logical(Op::kAnd, terms);
  }

  uint32_t parse_unary() {
    const Token& t = cur();
    if (t.kind == Tok::kNot) {
      enter(t);
      advance();
      uint32_t inner = parse_unary();
      --depth_;
      return negate(inner);
    }
    if (t.kind == Tok::kLParen) {
      enter(t);
      const Token& open = advance();
      uint32_t inner = parse_or();
      if (cur().kind == Tok::kEnd) {
        fail(cur(), "expected ')'",
             " to close the '(' at column " + std::to_string(column_of(src_, open.offset)));
      }
      if (cur().kind != Tok::kRParen) unexpected(cur(), /*in_group=*/true);
      advance();
      --depth_;
      if (is_test_operator(cur().kind)) {
        fail(cur(), "unexpected " + quote_token(cur().text),
             " (a condition in parentheses cannot be compared)");
      }
      return inner;
    }
    return parse_test();
  }

  static bool is_comparison(Tok k) {
    return k == Tok::kEq || k == Tok::kNe || k == Tok::kLt || k == Tok::kLe || k == Tok::kGt ||
           k == Tok::kGe;
  }
  static bool is_test_operator(Tok k) {
    return is_comparison(k) || k == Tok::kIn || k == Tok::kContains || k == Tok::kStartsWith ||
           k == Tok::kEndsWith;
  }
  static bool starts_operand(Tok k) {
    switch (k) {
      case Tok::kIdent:
      case Tok::kMeta:
      case Tok::kSetting:
      case Tok::kInt:
      case Tok::kDouble:
      case Tok::kString:
      case Tok::kTrue:
      case Tok::kFalse:
      case Tok::kNull:
      case Tok::kMinus:
        return true;
      default:
        return false;
    }
  }

  uint32_t parse_test() {
    const Token& first = cur();
    uint32_t lhs = parse_operand();
    const Token& t = cur();
    if (is_comparison(t.kind)) {
      advance();
      uint32_t rhs = parse_operand();
      if (is_comparison(cur().kind)) {
        fail(cur(), "comparisons cannot be chained",
             " (join them with '&&', e.g. 'a < b && b < c')");
      }
      Cmp cmp = to_cmp(t.kind);
      check_comparable(t, cmp, lhs, rhs);
      if (literal(lhs) && literal(rhs)) {
        return constant(compare(cmp, literal_value(lhs), literal_value(rhs)));
      }
      Node n;
      n.op = Op::kCompare;
      n.cmp = cmp;
      n.a = lhs;
      n.b = rhs;
      return add(n);
    }
    if (t.kind == Tok::kIn) {
      advance();
      return parse_in(t, lhs);
    }
    if (t.kind == Tok::kNot && tokens_[i_ + 1].kind == Tok::kIn) {
      advance();
      const Token& in = advance();
      return negate(parse_in(in, lhs));
    }
    if (t.kind == Tok::kContains || t.kind == Tok::kStartsWith || t.kind == Tok::kEndsWith) {
      advance();
      uint32_t rhs = parse_operand();
      Op op = t.kind == Tok::kContains     ? Op::kContains
              : t.kind == Tok::kStartsWith ? Op::kStartsWith
                                           : Op::kEndsWith;
      for (auto [side, which] : {std::pair{lhs, "left"}, std::pair{rhs, "right"}}) {
        std::optional<Type> type = static_type(side);
        if (type && *type != Type::kString) {
          fail(t, quote_token(t.text) + " needs strings, but its " + which + " side is " +
                      type_phrase(*type));
        }
      }
      if (literal(lhs) && literal(rhs)) {
        return constant(string_test(op, literal_value(lhs), literal_value(rhs)));
      }
      Node n;
      n.op = op;
      n.a = lhs;
      n.b = rhs;
      return add(n);
    }
    if (starts_operand(t.kind)) {
      fail(t, "expected an operator after " + quote_token(first.text),
           " but found " + quote_token(t.text));
    }
    return truthy(first, lhs);
  }

  // A bare operand used as a condition: true when it is the boolean true.
  uint32_t truthy(const Token& at, uint32_t operand) {
    const Operand& o = prog_.operands[operand];
    std::optional<Type> type = static_type(operand);
    if (o.src == Src::kLiteral) {
      if (o.constant.type == Type::kBool) return constant(o.constant.b);
      std::string what = o.constant.type == Type::kNull ? "null" : type_phrase(o.constant.type);
      fail(at, what + " is not a condition", " (compare it, e.g. 'price > 5')");
    }
    if (o.src != Src::kField && type && *type != Type::kBool) {
      fail(at, quote_token(at.text) + " is " + type_phrase(*type) + ", not a condition",
           " (compare it, e.g. '" + std::string(at.text) +
               (*type == Type::kString ? " == \"...\"" : " > 0") + "')");
    }
    Node n;
    n.op = Op::kTruthy;
    n.a = operand;
    return add(n);
  }

  uint32_t parse_in(const Token& in, uint32_t lhs) {
    if (cur().kind != Tok::kLBracket) {
      fail(cur(), "expected '[' after " + quote_token(in.text),
           " (a list of literals, e.g. 'side in [\"BUY\", \"SELL\"]')");
    }
    const Token& open = advance();
    uint32_t first = static_cast<uint32_t>(prog_.operands.size());
    std::optional<Type> lhs_type = static_type(lhs);
    for (;;) {
      const Token& t = cur();
      if (t.kind == Tok::kRBracket) break;
      if (t.kind == Tok::kEnd) {
        fail(t, "expected ']'",
             " to close the '[' at column " + std::to_string(column_of(src_, open.offset)));
      }
      if (!starts_literal(t.kind)) {
        std::string after = " but found " + quote_token(t.text);
        if (t.kind == Tok::kIdent) after += " (quote text: \"" + t.name + "\")";
        fail(t, "expected a literal in the list", after);
      }
      uint32_t element = parse_literal();
      std::optional<Type> element_type = static_type(element);
      if (lhs_type && element_type && !comparable(*lhs_type, *element_type)) {
        fail(t, "cannot compare " + std::string(type_phrase(*lhs_type)) + " with " +
                    type_phrase(*element_type) + " in the list");
      }
      if (cur().kind == Tok::kComma) {
        advance();
        continue;
      }
      if (cur().kind != Tok::kRBracket && cur().kind != Tok::kEnd) {
        fail(cur(), "expected ',' or ']'", " but found " + quote_token(cur().text));
      }
    }
    advance();
    uint32_t count = static_cast<uint32_t>(prog_.operands.size()) - first;
    if (literal(lhs)) {
      Value v = literal_value(lhs);
      bool found = false;
      for (uint32_t k = first; k < first + count; ++k) found = found || equal(v, literal_value(k));
      return constant(found);
    }
    Node n;
    n.op = Op::kIn;
    n.a = lhs;
    n.b = first;
    n.count = count;
    return add(n);
  }

  static bool starts_literal(Tok k) {
    return k == Tok::kInt || k == Tok::kDouble || k == Tok::kString || k == Tok::kTrue ||
           k == Tok::kFalse || k == Tok::kNull || k == Tok::kMinus;
  }

  uint32_t add_operand(Operand o) {
    prog_.operands.push_back(std::move(o));
    return static_cast<uint32_t>(prog_.operands.size() - 1);
  }

  uint32_t parse_literal() {
    const Token& t = advance();
    Operand o;
    Constant& c = o.constant;
    switch (t.kind) {
      case Tok::kInt:
        if (t.magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail(t, "integer " + std::string(t.text) + " is out of range");
        }
        c.type = Type::kInt;
        c.i = static_cast<int64_t>(t.magnitude);
        break;
      case Tok::kDouble:
        c.type = Type::kDouble;
        c.d = t.number;
        break;
      case Tok::kString:
        c.type = Type::kString;
        c.s = t.name;
        break;
      case Tok::kTrue:
      case Tok::kFalse:
        c.type = Type::kBool;
        c.b = t.kind == Tok::kTrue;
        break;
      case Tok::kNull:
        break;
      case Tok::kMinus: {
        const Token& n = cur();
        if (n.kind == Tok::kInt) {
          advance();
          c.type = Type::kInt;
          // -(2^63) is the one magnitude that only fits negated.
          c.i = static_cast<int64_t>(0 - n.magnitude);
        } else if (n.kind == Tok::kDouble) {
          advance();
          c.type = Type::kDouble;
          c.d = -n.number;
        } else {
          fail(n, "expected a number after '-'",
               n.kind == Tok::kEnd ? "" : " but found " + quote_token(n.text));
        }
        break;
      }
      default:
        fail(t, "expected a literal", " but found " + quote_token(t.text));
    }
    return add_operand(std::move(o));
  }

  uint32_t parse_operand() {
    const Token& t = cur();
    if (starts_literal(t.kind)) return parse_literal();
    Operand o;
    switch (t.kind) {
      case Tok::kIdent:
        o.src = Src::kField;
        o.name = t.name;
        break;
      case Tok::kMeta:
        resolve_meta(t, &o);
        break;
      case Tok::kSetting:
        resolve_setting(t, &o);
        break;
      default:
        expected_operand(t);
    }
    advance();
    return add_operand(std::move(o));
  }

  void resolve_meta(const Token& t, Operand* o) const {
    const std::string& n = t.name;
    if (n == "key")
      o->src = Src::kKey;
    else if (n == "source")
      o->src = Src::kSource;
    else if (n == "id")
      o->src = Src::kId;
    else if (n == "event_time_ns")
      o->src = Src::kEventTime;
    else if (n == "ingest_time_ns")
      o->src = Src::kIngestTime;
    else if (n.rfind("attr.", 0) == 0 && n.size() > 5) {
      o->src = Src::kAttr;
      o->name = n.substr(5);
    } else if (n == "attr" || n == "attr.") {
      fail(t, "expected an attribute name in " + quote_token(t.text), " (e.g. '@attr.tier')");
    } else {
      fail(t, "unknown metadata " + quote_token(t.text),
           " (use @key, @source, @id, @event_time_ns, @ingest_time_ns or @attr.NAME)");
    }
  }

  void resolve_setting(const Token& t, Operand* o) {
    o->src = Src::kSetting;
    o->name = t.name;
    for (size_t k = 0; k < prog_.settings.size(); ++k) {
      if (prog_.settings[k].name == t.name) {
        o->slot = static_cast<uint32_t>(k);
        return;
      }
    }
    std::optional<Json> value;
    if (host_ != nullptr) value = Host(host_).setting(t.name);
    if (!value) fail(t, "unknown setting " + quote_token(t.text));
    Setting s;
    s.name = t.name;
    if (!constant_from_json(*value, &s.value)) {
      const char* what = value->is_array() ? "a list" : value->is_object() ? "a table" : "not JSON";
      fail(t, "setting " + quote_token(t.text) + " is " + what +
                  ", which an expression cannot compare");
    }
    o->slot = static_cast<uint32_t>(prog_.settings.size());
    prog_.settings.push_back(std::move(s));
  }

  // The type an operand is known to have at compile time, or nullopt (fields, unset settings).
  std::optional<Type> static_type(uint32_t operand) const {
    const Operand& o = prog_.operands[operand];
    switch (o.src) {
      case Src::kLiteral:
        return o.constant.type;
      case Src::kKey:
      case Src::kSource:
      case Src::kAttr:
        return Type::kString;
      case Src::kId:
      case Src::kEventTime:
      case Src::kIngestTime:
        return Type::kInt;
      case Src::kSetting: {
        Type t = prog_.settings[o.slot].value.type;
        if (t == Type::kNull) return std::nullopt;
        return t;
      }
      case Src::kField:
        return std::nullopt;
    }
    return std::nullopt;
  }

  static bool comparable(Type a, Type b) {
    if (a == Type::kNull || b == Type::kNull) return true;
    if (is_number(a) && is_number(b)) return true;
    return a == b;
  }

  void check_comparable(const Token& op, Cmp cmp, uint32_t lhs, uint32_t rhs) const {
    std::optional<Type> a = static_type(lhs);
    std::optional<Type> b = static_type(rhs);
    bool ordering = cmp != Cmp::kEq && cmp != Cmp::kNe;
    if (ordering && (a == Type::kNull || b == Type::kNull)) {
      fail(op, quote_token(op.text) + " with null is always false",
           " (use '== null' or '!= null')");
    }
    if (a && b && !comparable(*a, *b)) {
      fail(op, std::string("cannot compare ") + type_phrase(*a) + " with " + type_phrase(*b));
    }
    if (ordering && (a == Type::kBool || b == Type::kBool)) {
      fail(op, "booleans have no order, so " + quote_token(op.text) + " cannot compare them",
           " (use == or !=)");
    }
  }

  static Cmp to_cmp(Tok k) {
    switch (k) {
      case Tok::kEq:
        return Cmp::kEq;
      case Tok::kNe:
        return Cmp::kNe;
      case Tok::kLt:
        return Cmp::kLt;
      case Tok::kLe:
        return Cmp::kLe;
      case Tok::kGt:
        return Cmp::kGt;
      default:
        return Cmp::kGe;
    }
  }

  std::string_view src_;
  const sluice_host* host_;
  std::vector<Token> tokens_;
  size_t i_ = 0;
  int depth_ = 0;
  Program prog_;
};

}  // namespace detail

}  // namespace sluice::expr
