// Expression lexer: source text → tokens, and the compile Error every stage reports.
//
// Columns are 1-based and count characters (UTF-8 code points), which is what an editor shows,
// so an error inside a string with non-ASCII symbols still points at the right place.
#pragma once

#include <charconv>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::expr {

// A compile error: where in the expression (1-based column) and a message a user can act on.
// The message repeats the column, so it reads well on its own ("... at column 17").
struct Error : std::exception {
  Error(uint32_t column_in, std::string message_in)
      : column(column_in), message(std::move(message_in)) {}
  const char* what() const noexcept override { return message.c_str(); }

  uint32_t column;
  std::string message;
};

enum class Tok : uint8_t {
  kEnd,
  kIdent,    // field name
  kMeta,     // @key, @attr.NAME, ...
  kSetting,  // $name
  kInt,
  kDouble,
  kString,
  kTrue,
  kFalse,
  kNull,
  kAnd,  // && and
  kOr,   // || or
  kNot,  // ! not
  kIn,
  kContains,
  kStartsWith,
  kEndsWith,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kMinus,
  kError,  // a token the lexer could not read; ends the list (see Lexer::tokenize)
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;           // byte offset into the source
  std::string_view text;       // as written (quotes included for strings)
  std::string name;            // identifier, metadata or setting name; unescaped string contents
  uint64_t magnitude = 0;      // kInt: the digits' value (the sign is a separate kMinus token)
  double number = 0;           // kDouble
  std::optional<Error> error;  // kError
};

// 1-based column (in code points) of a byte offset.
inline uint32_t column_of(std::string_view src, size_t offset) {
  uint32_t col = 1;
  for (size_t i = 0; i < offset && i < src.size(); ++i) {
    if ((static_cast<unsigned char>(src[i]) & 0xC0) != 0x80) ++col;
  }
  return col;
}

// A token as quoted in messages, shortened so one long string does not swamp the message.
// String literals carry their own quotes and are shown as written.
inline std::string quote_token(std::string_view text) {
  constexpr size_t kMax = 24;
  bool literal = !text.empty() && (text.front() == '"' || text.front() == '\'');
  if (text.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    char close = literal ? text.front() : '\'';
    return (literal ? "" : "'") + std::string(text.substr(0, cut)) + "..." + close;
  }
  return literal ? std::string(text) : "'" + std::string(text) + "'";
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  // Every token of the source, ending with kEnd, or with a kError token carrying the first
  // bad token's error. The parser raises that error only when it reaches the token, so a
  // mistake earlier in the text is always the one reported.
  std::vector<Token> tokenize() {
    std::vector<Token> out;
    for (;;) {
      skip_space();
      size_t start = pos_;
      try {
        Token t = next();
        bool end = t.kind == Tok::kEnd;
        out.push_back(std::move(t));
        if (end) return out;
      } catch (Error& e) {
        Token t;
        t.kind = Tok::kError;
        t.offset = start;
        t.text = src_.substr(start, 1);
        t.error = std::move(e);
        out.push_back(std::move(t));
        return out;
      }
    }
  }

 private:
  static bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c) || c == '.'; }
  static bool is_operator_char(char c) {
    return c == '=' || c == '<' || c == '>' || c == '!' || c == '&' || c == '|';
  }

  [[noreturn]] void fail(size_t offset, const std::string& message,
                         const std::string& after = {}) const {
    uint32_t col = column_of(src_, offset);
    throw Error(col, message + " at column " + std::to_string(col) + after);
  }

  char peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }

  void skip_space() {
    while (pos_ < src_.size() &&
           (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' || src_[pos_] == '\r')) {
      ++pos_;
    }
  }

  Token make(Tok kind, size_t start) const {
    Token t;
    t.kind = kind;
    t.offset = start;
    t.text = src_.substr(start, pos_ - start);
    return t;
  }

  Token next() {
    size_t start = pos_;
    if (pos_ >= src_.size()) return make(Tok::kEnd, start);
    char c = src_[pos_];
    if (is_ident_start(c)) return word(start);
    if (is_digit(c)) return number(start);
    if (c == '"' || c == '\'') return string(start, c);
    if (c == '@') return sigil(start, Tok::kMeta);
    if (c == '$') return sigil(start, Tok::kSetting);
    if (is_operator_char(c)) return op(start);
    ++pos_;
    switch (c) {
      case '(':
        return make(Tok::kLParen, start);
      case ')':
        return make(Tok::kRParen, start);
      case '[':
        return make(Tok::kLBracket, start);
      case ']':
        return make(Tok::kRBracket, start);
      case ',':
        return make(Tok::kComma, start);
      case '-':
        return make(Tok::kMinus, start);
      default:
        break;
    }
    // Quote the whole UTF-8 sequence, not a lone lead byte.
    size_t len = 1;
    while (start + len < src_.size() &&
           (static_cast<unsigned char>(src_[start + len]) & 0xC0) == 0x80) {
      ++len;
    }
    fail(start, "unexpected character '" + std::string(src_.substr(start, len)) + "'");
  }

  Token word(size_t start) {
    while (pos_ < src_.size() && is_ident_char(src_[pos_])) ++pos_;
    std::string_view w = src_.substr(start, pos_ - start);
    struct Keyword {
      std::string_view text;
      Tok kind;
    };
    static constexpr Keyword kKeywords[] = {
        {"and", Tok::kAnd},
        {"or", Tok::kOr},
        {"not", Tok::kNot},
        {"in", Tok::kIn},
        {"contains", Tok::kContains},
        {"starts_with", Tok::kStartsWith},
        {"ends_with", Tok::kEndsWith},
        {"true", Tok::kTrue},
        {"false", Tok::kFalse},
        {"null", Tok::kNull},
    };
    for (const Keyword& k : kKeywords) {
      if (w == k.text) return make(k.kind, start);
    }
    Token t = make(Tok::kIdent, start);
    t.name.assign(w);
    return t;
  }

  // digits ['.' digits] [('e'|'E') ['+'|'-'] digits]. The whole run of number-like characters
  // is taken first, so "1.2.3" or "12abc" is reported as one invalid number.
  Token number(size_t start) {
    while (pos_ < src_.size()) {
      char ch = src_[pos_];
      bool sign_after_exponent = (ch == '+' || ch == '-') &&
                                 (src_[pos_ - 1] == 'e' || src_[pos_ - 1] == 'E') &&
                                 is_digit(peek(1));
      if (!(is_ident_char(ch) || sign_after_exponent)) break;
      ++pos_;
    }
    std::string_view text = src_.substr(start, pos_ - start);
    size_t i = 0;
    auto digits = [&] {
      size_t from = i;
      while (i < text.size() && is_digit(text[i])) ++i;
      return i > from;
    };
    bool ok = digits();
    bool integral = true;
    if (ok && i < text.size() && text[i] == '.') {
      ++i;
      integral = false;
      ok = digits();
    }
    if (ok && i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
      ++i;
      integral = false;
      if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
      ok = digits();
    }
    if (!ok || i != text.size()) fail(start, "invalid number '" + std::string(text) + "'");
    Token t = make(integral ? Tok::kInt : Tok::kDouble, start);
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (integral) {
      auto [p, ec] = std::from_chars(first, last, t.magnitude);
      if (ec != std::errc() || t.magnitude > (uint64_t{1} << 63)) {
        fail(start, "integer " + std::string(text) + " is out of range");
      }
    } else {
      auto [p, ec] = std::from_chars(first, last, t.number);
      if (ec != std::errc()) fail(start, "number " + std::string(text) + " is out of range");
    }
    return t;
  }

  Token string(size_t start, char quote) {
    ++pos_;
    std::string value;
    while (pos_ < src_.size()) {
      char ch = src_[pos_];
      if (ch == quote) {
        ++pos_;
        Token t = make(Tok::kString, start);
        t.name = std::move(value);
        return t;
      }
      if (ch == '\\') {
        char e = peek(1);
        switch (e) {
          case '\\':
            value += '\\';
            break;
          case '"':
            value += '"';
            break;
          case '\'':
            value += '\'';
            break;
          case 'n':
            value += '\n';
            break;
          case 't':
            value += '\t';
            break;
          case '\0':
            if (pos_ + 1 >= src_.size()) fail(start, "unterminated string starting");
            [[fallthrough]];
          default:
            fail(pos_, "unknown escape '\\" + std::string(1, e) + "'",
                 " (use \\\\, \\\", \\', \\n or \\t)");
        }
        pos_ += 2;
        continue;
      }
      value += ch;
      ++pos_;
    }
    fail(start, "unterminated string starting");
  }

  // @name / $name. Attribute names (@attr.NAME) may also contain '-', as header-like keys do.
  Token sigil(size_t start, Tok kind) {
    ++pos_;
    bool meta = kind == Tok::kMeta;
    if (pos_ >= src_.size() || !is_ident_start(src_[pos_])) {
      fail(start,
           meta ? "expected a metadata name after '@'" : "expected a setting name after '$'");
    }
    bool attr = meta && src_.substr(pos_, 5) == "attr.";
    while (pos_ < src_.size() && (is_ident_char(src_[pos_]) || (attr && src_[pos_] == '-'))) {
      ++pos_;
    }
    Token t = make(kind, start);
    t.name.assign(src_.substr(start + 1, pos_ - start - 1));
    return t;
  }

  Token op(size_t start) {
    if (src_[pos_] == '!' && peek(1) != '=') {
      ++pos_;
      return make(Tok::kNot, start);
    }
    ++pos_;
    while (pos_ < src_.size() && is_operator_char(src_[pos_]) && src_[pos_] != '!') ++pos_;
    std::string_view o = src_.substr(start, pos_ - start);
    struct Known {
      std::string_view text;
      Tok kind;
    };
    static constexpr Known kKnown[] = {
        {"==", Tok::kEq}, {"!=", Tok::kNe}, {"<", Tok::kLt},   {"<=", Tok::kLe},
        {">", Tok::kGt},  {">=", Tok::kGe}, {"&&", Tok::kAnd}, {"||", Tok::kOr},
    };
    for (const Known& k : kKnown) {
      if (o == k.text) return make(k.kind, start);
    }
    // Common slips from other languages, with the operator that was probably meant.
    static constexpr std::string_view kSlips[][2] = {
        {"=", "=="},  {"===", "=="}, {"!==", "!="}, {"<>", "!="},
        {"=<", "<="}, {"=>", ">="},  {"&", "&&"},   {"|", "||"},
    };
    std::string message = "unknown operator '" + std::string(o) + "'";
    for (const auto& s : kSlips) {
      if (o == s[0]) fail(start, message, " (did you mean '" + std::string(s[1]) + "'?)");
    }
    fail(start, message);
  }

  std::string_view src_;
  size_t pos_ = 0;
};

}  // namespace sluice::expr
