// A deliberately small JSON reader for tests: enough to load the wire-vector
// files (objects, arrays, strings with escapes, numbers, booleans, null).
// Not for production input: it throws std::runtime_error on anything odd.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckpt::testjson {

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;

  const Value& operator[](const std::string& k) const {
    auto it = obj.find(k);
    if (kind != Object || it == obj.end()) throw std::runtime_error("missing key " + k);
    return it->second;
  }
  bool has(const std::string& k) const { return kind == Object && obj.count(k) > 0; }
  long long integer() const { return static_cast<long long>(num); }
};

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}
  Value parse() {
    Value v = value();
    ws();
    if (i_ != s_.size()) fail("trailing data");
    return v;
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
  [[noreturn]] void fail(const char* why) { throw std::runtime_error(std::string("json: ") + why + " at " + std::to_string(i_)); }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("eof");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail("unexpected char");
    i_++;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out.push_back(char(cp));
    else if (cp < 0x800) { out.push_back(char(0xC0 | (cp >> 6))); out.push_back(char(0x80 | (cp & 0x3F))); }
    else if (cp < 0x10000) { out.push_back(char(0xE0 | (cp >> 12))); out.push_back(char(0x80 | ((cp >> 6) & 0x3F))); out.push_back(char(0x80 | (cp & 0x3F))); }
    else { out.push_back(char(0xF0 | (cp >> 18))); out.push_back(char(0x80 | ((cp >> 12) & 0x3F))); out.push_back(char(0x80 | ((cp >> 6) & 0x3F))); out.push_back(char(0x80 | (cp & 0x3F))); }
  }
  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("short \\u");
    uint32_t v = std::stoul(s_.substr(i_, 4), nullptr, 16);
    i_ += 4;
    return v;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') break;
      if (c != '\\') { out.push_back(c); continue; }
      char e = s_[i_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: out.push_back(e);
      }
    }
    return out;
  }
  Value value() {
    Value v;
    char c = peek();
    if (c == '{') {
      i_++;
      v.kind = Value::Object;
      if (peek() == '}') { i_++; return v; }
      while (true) {
        std::string k = string();
        expect(':');
        v.obj[k] = value();
        if (peek() == ',') { i_++; continue; }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      i_++;
      v.kind = Value::Array;
      if (peek() == ']') { i_++; return v; }
      while (true) {
        v.arr.push_back(value());
        if (peek() == ',') { i_++; continue; }
        expect(']');
        return v;
      }
    }
    if (c == '"') { v.kind = Value::String; v.str = string(); return v; }
    if (s_.compare(i_, 4, "true") == 0) { i_ += 4; v.kind = Value::Bool; v.b = true; return v; }
    if (s_.compare(i_, 5, "false") == 0) { i_ += 5; v.kind = Value::Bool; return v; }
    if (s_.compare(i_, 4, "null") == 0) { i_ += 4; return v; }
    size_t used = 0;
    v.num = std::stod(s_.substr(i_, 40), &used);
    if (used == 0) fail("bad number");
    i_ += used;
    v.kind = Value::Number;
    return v;
  }
};

inline Value parse(const std::string& s) { return Parser(s).parse(); }

}  // namespace ckpt::testjson
