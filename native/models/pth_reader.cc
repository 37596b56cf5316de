#include "models/pth_reader.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <variant>

#include "common/files.h"
#include "models/pth_format.h"

namespace torch_attn::models {

namespace {

// ---- the zip container --------------------------------------------------------------------

uint16_t U16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | (static_cast<uint8_t>(b[at + 1]) << 8));
}
uint32_t U32(const std::string& b, size_t at) { return U16(b, at) | (static_cast<uint32_t>(U16(b, at + 2)) << 16); }
uint64_t U64(const std::string& b, size_t at) { return U32(b, at) | (static_cast<uint64_t>(U32(b, at + 4)) << 32); }

struct ZipEntry {
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
  uint16_t method = 0;  // 0: stored
};

class Zip {
 public:
  Zip(const std::string& bytes, const std::string& name) : bytes_(bytes), name_(name) { ReadDirectory(); }

  bool Has(const std::string& entry) const { return entries_.count(entry) > 0; }
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

  std::pair<const char*, uint64_t> Data(const std::string& entry) const {
    auto it = entries_.find(entry);
    if (it == entries_.end()) Fail("entry '" + entry + "' is missing");
    if (it->second.method != 0) Fail("entry '" + entry + "' is compressed; PyTorch writes stored (uncompressed) entries");
    return {bytes_.data() + it->second.offset, it->second.size};
  }

  [[noreturn]] void Fail(const std::string& what) const {
    throw CheckpointError(name_ + " is not a readable PyTorch checkpoint: " + what);
  }

 private:
  void Need(uint64_t at, uint64_t size, const std::string& what) const {
    if (at > bytes_.size() || size > bytes_.size() - at) Fail(what + " runs past the end of the file (truncated?)");
  }

  void ReadDirectory() {
    const std::string& b = bytes_;
    if (b.size() < 22) Fail("the file is too short to be a zip archive");
    // End of central directory: its signature within the last 64 KiB + 22 bytes.
    size_t lowest = b.size() > 65557 ? b.size() - 65557 : 0;
    size_t eocd = std::string::npos;
    for (size_t i = b.size() - 22 + 1; i-- > lowest;) {
      if (U32(b, i) == 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd == std::string::npos) Fail("no zip directory found (truncated, or not a zip file)");
    uint64_t count = U16(b, eocd + 10);
    uint64_t dir_size = U32(b, eocd + 12);
    uint64_t dir_offset = U32(b, eocd + 16);
    if (dir_offset == 0xFFFFFFFF || count == 0xFFFF) {
      // Zip64: the locator sits just before the end record and points at the zip64 end record.
      if (eocd < 20 || U32(b, eocd - 20) != 0x07064b50) Fail("zip64 directory locator is missing");
      uint64_t z64 = U64(b, eocd - 20 + 8);
      Need(z64, 56, "zip64 directory");
      if (U32(b, z64) != 0x06064b50) Fail("zip64 directory record is corrupt");
      count = U64(b, z64 + 32);
      dir_size = U64(b, z64 + 40);
      dir_offset = U64(b, z64 + 48);
    }
    Need(dir_offset, dir_size, "zip directory");
    uint64_t at = dir_offset;
    for (uint64_t i = 0; i < count; ++i) {
      Need(at, 46, "zip directory entry");
      if (U32(b, at) != 0x02014b50) Fail("zip directory entry is corrupt");
      uint16_t method = U16(b, at + 10);
      uint64_t size = U32(b, at + 20);
      uint64_t raw_size = U32(b, at + 24);
      uint16_t name_len = U16(b, at + 28), extra_len = U16(b, at + 30), comment_len = U16(b, at + 32);
      uint64_t local = U32(b, at + 42);
      Need(at + 46, uint64_t{name_len} + extra_len + comment_len, "zip directory entry");
      std::string name = b.substr(at + 46, name_len);
      // Zip64 extra field: sizes and offset that did not fit 32 bits, in this order.
      for (uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
        uint16_t id = U16(b, e), len = U16(b, e + 2);
        if (e + 4 + len > at + 46 + name_len + extra_len) break;
        if (id == 0x0001) {
          uint64_t p = e + 4;
          if (raw_size == 0xFFFFFFFF && p + 8 <= e + 4 + len) raw_size = U64(b, p), p += 8;
          if (size == 0xFFFFFFFF && p + 8 <= e + 4 + len) size = U64(b, p), p += 8;
          if (local == 0xFFFFFFFF && p + 8 <= e + 4 + len) local = U64(b, p);
        }
        e += 4 + len;
      }
      if (method == 0 && size != raw_size) Fail("entry '" + name + "' has inconsistent sizes");
      Need(local, 30, "zip entry header");
      if (U32(b, local) != 0x04034b50) Fail("zip entry header of '" + name + "' is corrupt");
      uint64_t data = local + 30 + U16(b, local + 26) + U16(b, local + 28);
      Need(data, size, "zip entry '" + name + "'");
      // torch.load takes the first of two same-named entries, a naive reader the last: a file
      // that names one twice means two different things to them, so it is refused.
      if (!entries_.emplace(name, ZipEntry{data, size, method}).second) Fail("it names the entry '" + name + "' twice");
      at += 46 + name_len + extra_len + comment_len;
    }
  }

  const std::string& bytes_;
  std::string name_;
  std::map<std::string, ZipEntry> entries_;
};

// ---- the pickle subset ---------------------------------------------------------------------

struct Value;
// Values are owned by the read's arena (see Arena below) and refer to each other by plain
// pointer: a pickle can make a list that contains itself through the memo, and reference-counted
// values would never free such a cycle (or the tensors hanging off it) again.
using ValuePtr = Value*;

struct Global {
  std::string module, name;
};
struct Storage {
  at::Tensor flat;  // 1-D, the whole storage
};
struct Mark {};
using List = std::vector<ValuePtr>;
struct Tuple {
  std::vector<ValuePtr> items;
};
using Dict = std::vector<std::pair<ValuePtr, ValuePtr>>;

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Global, Storage, at::Tensor, List, Tuple, Dict, Mark> v;
};

// Every value of one read, freed together when the read ends, cycles or not; flat, so even a
// million-deep nesting is freed without recursion.
class Arena {
 public:
  Arena() : outer_(current_) { current_ = this; }
  ~Arena() { current_ = outer_; }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  static Value* New() {
    current_->values_.push_back(std::make_unique<Value>());
    return current_->values_.back().get();
  }

 private:
  std::vector<std::unique_ptr<Value>> values_;
  Arena* outer_;
  static thread_local Arena* current_;
};
thread_local Arena* Arena::current_ = nullptr;

ValuePtr Make(decltype(Value::v) v) {
  ValuePtr p = Arena::New();
  p->v = std::move(v);
  return p;
}

bool AllowedGlobal(const Global& g) {
  if (g.module == "collections" && g.name == "OrderedDict") return true;
  if (g.module == "torch._utils" && (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_parameter")) return true;
  // LibTorch's own pickler (torch::pickle_save, torch.jit, and torch-attn before 0.2) tags typed
  // dicts; the tag is a type name.
  if (g.module == "torch.jit._pickle" && g.name == "restore_type_tag") return true;
  return g.module == "torch" && StorageDtype(g.name).has_value();
}

class Unpickler {
 public:
  Unpickler(const Zip& zip, const std::string& prefix, const char* data, uint64_t size)
      : zip_(zip), prefix_(prefix), data_(data), size_(size) {}

  ValuePtr Run() {
    while (true) {
      uint8_t op = Byte();
      switch (op) {
        case 0x80: Byte(); break;                      // PROTO
        case 0x95: Bytes(8); break;                    // FRAME
        case '.': return Pop();                        // STOP
        case '(': Push(Make(Mark{})); break;           // MARK
        case '}': Push(Make(Dict{})); break;           // EMPTY_DICT
        case ']': Push(Make(List{})); break;           // EMPTY_LIST
        case ')': Push(Make(Tuple{})); break;          // EMPTY_TUPLE
        case 'N': Push(Make(std::monostate{})); break; // NONE
        case 0x88: Push(Make(true)); break;            // NEWTRUE
        case 0x89: Push(Make(false)); break;           // NEWFALSE
        case 'K': Push(Make(static_cast<int64_t>(Byte()))); break;  // BININT1
        case 'M': Push(Make(static_cast<int64_t>(Le(2)))); break;   // BININT2
        case 'J': Push(Make(static_cast<int64_t>(static_cast<int32_t>(Le(4))))); break;  // BININT
        case 0x8a: Push(Make(Long1())); break;         // LONG1
        case 'G': Push(Make(BinFloat())); break;       // BINFLOAT
        case 'X': Push(Make(Text(Le(4)))); break;      // BINUNICODE
        case 0x8c: Push(Make(Text(Byte()))); break;    // SHORT_BINUNICODE
        case 0x8d: Push(Make(Text(Le(8)))); break;     // BINUNICODE8
        case 'C': Push(Make(Text(Byte()))); break;     // SHORT_BINBYTES (kept as a string)
        case 'B': Push(Make(Text(Le(4)))); break;      // BINBYTES
        case 'q': memo_[Byte()] = Top(); break;        // BINPUT
        case 'r': memo_[Le(4)] = Top(); break;         // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = Top(); break; // MEMOIZE
        case 'h': Push(Memo(Byte())); break;           // BINGET
        case 'j': Push(Memo(Le(4))); break;            // LONG_BINGET
        case 't': Push(Make(Tuple{PopToMark()})); break;  // TUPLE
        case 0x85: { auto a = Pop(); Push(Make(Tuple{{a}})); break; }  // TUPLE1
        case 0x86: { auto b = Pop(), a = Pop(); Push(Make(Tuple{{a, b}})); break; }  // TUPLE2
        case 0x87: { auto c = Pop(), b = Pop(), a = Pop(); Push(Make(Tuple{{a, b, c}})); break; }  // TUPLE3
        case 'a': { auto item = Pop(); AsList(Top()).push_back(item); break; }  // APPEND
        case 'e': { auto items = PopToMark(); auto& l = AsList(Top()); l.insert(l.end(), items.begin(), items.end()); break; }
        case 's': { auto value = Pop(), key = Pop(); AsDict(Top()).emplace_back(key, value); break; }  // SETITEM
        case 'u': {                                    // SETITEMS
          auto items = PopToMark();
          if (items.size() % 2 != 0) Fail("SETITEMS with an odd item count");
          auto& d = AsDict(Top());
          for (size_t i = 0; i < items.size(); i += 2) d.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'c': {                                    // GLOBAL
          Global g{Line(), Line()};
          CheckGlobal(g);
          Push(Make(g));
          break;
        }
        case 0x93: {                                   // STACK_GLOBAL
          auto name = Pop(), module = Pop();
          Global g{AsString(module), AsString(name)};
          CheckGlobal(g);
          Push(Make(g));
          break;
        }
        case 'Q': Push(PersistentLoad(Pop())); break;  // BINPERSID
        case 'R': { auto args = Pop(), fn = Pop(); Push(Reduce(fn, args)); break; }  // REDUCE
        case 'b': Pop(); break;  // BUILD: object state (an OrderedDict's _metadata), not needed
        default: {
          std::ostringstream msg;
          msg << "the pickle uses opcode 0x" << std::hex << static_cast<int>(op)
              << ", which a state dict never needs (only tensors, containers, strings and numbers are read)";
          Fail(msg.str());
        }
      }
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const { zip_.Fail(what); }

  uint8_t Byte() {
    if (pos_ >= size_) Fail("the pickle ends early (truncated)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  const char* Bytes(uint64_t n) {
    if (n > size_ - pos_) Fail("the pickle ends early (truncated)");
    const char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t Le(int n) {
    const char* p = Bytes(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
  }
  int64_t Long1() {
    uint8_t n = Byte();
    if (n > 8) Fail("an integer wider than 64 bits");
    if (n == 0) return 0;
    uint64_t v = Le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  double BinFloat() {
    const char* p = Bytes(8);
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(p[i]);  // big-endian
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string Text(uint64_t n) {
    const char* p = Bytes(n);
    return std::string(p, n);
  }
  std::string Line() {
    std::string out;
    for (char c; (c = static_cast<char>(Byte())) != '\n';) {
      out += c;
      if (out.size() > 256) Fail("a global name longer than 256 characters");
    }
    return out;
  }

  void Push(ValuePtr v) {
    if (stack_.size() > 1000000) Fail("the pickle stack grows without bound");
    stack_.push_back(std::move(v));
  }
  ValuePtr Pop() {
    if (stack_.empty()) Fail("the pickle pops from an empty stack (corrupt)");
    auto v = stack_.back();
    stack_.pop_back();
    if (std::holds_alternative<Mark>(v->v)) Fail("the pickle uses a MARK as a value (corrupt)");
    return v;
  }
  ValuePtr& Top() {
    if (stack_.empty()) Fail("the pickle reads an empty stack (corrupt)");
    return stack_.back();
  }
  std::vector<ValuePtr> PopToMark() {
    std::vector<ValuePtr> items;
    while (true) {
      if (stack_.empty()) Fail("the pickle has no MARK where one is needed (corrupt)");
      auto v = stack_.back();
      stack_.pop_back();
      if (std::holds_alternative<Mark>(v->v)) break;
      items.push_back(v);
    }
    return {items.rbegin(), items.rend()};
  }
  ValuePtr Memo(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) Fail("the pickle reads a memo slot it never wrote (corrupt)");
    return it->second;
  }

  List& AsList(ValuePtr& v) {
    if (auto* l = std::get_if<List>(&v->v)) return *l;
    Fail("APPEND to something that is not a list");
  }
  Dict& AsDict(ValuePtr& v) {
    if (auto* d = std::get_if<Dict>(&v->v)) return *d;
    Fail("SETITEM on something that is not a dict");
  }
  std::string AsString(const ValuePtr& v) {
    if (auto* s = std::get_if<std::string>(&v->v)) return *s;
    Fail("expected a string in the pickle");
  }
  int64_t AsInt(const ValuePtr& v) {
    if (auto* i = std::get_if<int64_t>(&v->v)) return *i;
    Fail("expected an integer in the pickle");
  }
  std::vector<int64_t> AsInts(const ValuePtr& v) {
    auto* t = std::get_if<Tuple>(&v->v);
    if (t == nullptr) Fail("expected a tuple of integers in the pickle");
    std::vector<int64_t> out;
    for (auto& item : t->items) out.push_back(AsInt(item));
    return out;
  }

  void CheckGlobal(const Global& g) {
    if (g.module == "torch" && g.name.size() > 7 && g.name.compare(g.name.size() - 7, 7, "Storage") == 0 && !AllowedGlobal(g)) {
      Fail("it holds tensors of type torch." + g.name +
           ", which torch-attn does not read (readable: float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool)");
    }
    if (!AllowedGlobal(g)) {
      Fail("it asks for " + g.module + "." + g.name +
           ", which a state dict never needs; refusing to load it (a pickle that names code can run it)");
    }
  }

  ValuePtr PersistentLoad(const ValuePtr& pid) {
    // ('storage', torch.<Type>Storage, key, location, numel)
    auto* t = std::get_if<Tuple>(&pid->v);
    if (t == nullptr || t->items.size() < 5 || AsString(t->items[0]) != "storage") Fail("unknown persistent id");
    auto* type = std::get_if<Global>(&t->items[1]->v);
    if (type == nullptr) Fail("storage without a type");
    std::string key = AsString(t->items[2]);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    auto storage_type = StorageDtype(type->name);
    if (type->module != "torch" || !storage_type) Fail("a storage whose type is not a torch storage type");
    at::ScalarType dtype = *storage_type;
    auto [bytes, size] = zip_.Data(prefix_ + "data/" + key);
    int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
    int64_t numel = static_cast<int64_t>(size) / element;
    at::Tensor flat = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (numel > 0) std::memcpy(flat.data_ptr(), bytes, static_cast<size_t>(numel * element));
    auto value = Make(Storage{flat});
    storages_[key] = value;
    return value;
  }

  ValuePtr Reduce(const ValuePtr& fn, const ValuePtr& args) {
    auto* g = std::get_if<Global>(&fn->v);
    auto* a = std::get_if<Tuple>(&args->v);
    if (g == nullptr || a == nullptr) Fail("REDUCE of something that is not an allowed global");
    if (g->name == "OrderedDict") return Make(Dict{});
    if (g->name == "_rebuild_parameter") {
      if (a->items.empty() || !std::holds_alternative<at::Tensor>(a->items[0]->v)) Fail("malformed parameter");
      return a->items[0];
    }
    if (g->name == "_rebuild_tensor_v2") return Make(RebuildTensor(*a));
    if (g->name == "restore_type_tag") {
      if (a->items.empty()) Fail("malformed type tag");
      return a->items[0];
    }
    Fail("cannot call " + g->module + "." + g->name);
  }

  static constexpr int64_t kMaxExpansion = int64_t{1} << 20;

  at::Tensor RebuildTensor(const Tuple& a) {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.items.size() < 4) Fail("malformed tensor record");
    auto* storage = std::get_if<Storage>(&a.items[0]->v);
    if (storage == nullptr) Fail("tensor record without a storage");
    int64_t offset = AsInt(a.items[1]);
    auto sizes = AsInts(a.items[2]);
    auto strides = AsInts(a.items[3]);
    if (sizes.size() != strides.size()) Fail("tensor record with mismatched size and stride");
    constexpr int64_t kLimit = int64_t{1} << 48;  // far past any real tensor, far from overflow
    if (offset < 0 || offset > kLimit) Fail("tensor record with an impossible storage offset");
    int64_t last = offset, numel = 1;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0 || strides[i] < 0) Fail("tensor record with a negative size or stride");
      if (sizes[i] > kLimit || strides[i] > kLimit) Fail("tensor record with an impossible size or stride");
      // Both factors are below 2^48: saturate before multiplying so nothing overflows.
      numel = (sizes[i] != 0 && numel > kLimit / sizes[i]) ? kLimit : numel * sizes[i];
      if (sizes[i] > 1 && strides[i] > 0) {
        int64_t span = (strides[i] > kLimit / (sizes[i] - 1)) ? kLimit : (sizes[i] - 1) * strides[i];
        last = std::min(kLimit, last + span);
      }
    }
    if (sizes.size() > 64) Fail("tensor record with more than 64 dimensions");
    int64_t available = storage->flat.numel();
    if (numel > 0 && last >= available) {
      Fail("a tensor reaches past its storage (" + std::to_string(available) + " elements): truncated or corrupt");
    }
    // A view with zero or overlapping strides can name far more elements than are stored;
    // materialised here, a few stored bytes would become gigabytes. State dicts never hold such
    // views beyond a small size.
    if (numel > available && numel > kMaxExpansion) {
      Fail("a tensor record expands " + std::to_string(available) + " stored elements to " + std::to_string(numel) +
           " (a broadcast view); refused above " + std::to_string(kMaxExpansion) + " elements");
    }
    return storage->flat.as_strided(sizes, strides, offset).clone(at::MemoryFormat::Contiguous);
  }

  const Zip& zip_;
  std::string prefix_;
  const char* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, ValuePtr> storages_;
};

NamedTensors ToNamedTensors(const Dict& dict, const Zip& zip, bool allow_nested) {
  if (allow_nested) {
    // A training checkpoint: {'epoch': ..., 'state_dict': {...}, 'optimizer': ...}.
    for (const auto& [key, value] : dict) {
      auto* name = std::get_if<std::string>(&key->v);
      auto* inner = std::get_if<Dict>(&value->v);
      if (name != nullptr && inner != nullptr && (*name == "state_dict" || *name == "model_state_dict" || *name == "model")) {
        return ToNamedTensors(*inner, zip, false);
      }
    }
  }
  NamedTensors out;
  for (const auto& [key, value] : dict) {
    auto* name = std::get_if<std::string>(&key->v);
    if (name == nullptr) zip.Fail("a state dict key that is not a string");
    // Module names never hold NUL; a key with one would be cut short on its way to JS.
    if (name->find('\0') != std::string::npos || name->empty()) zip.Fail("a state dict key that is empty or holds a NUL byte");
    auto* tensor = std::get_if<at::Tensor>(&value->v);
    if (tensor == nullptr) zip.Fail("the value of '" + *name + "' is not a tensor (expected a state dict)");
    out.emplace_back(*name, *tensor);
  }
  if (out.empty()) zip.Fail("it holds no tensors (expected a state dict: names mapped to tensors)");
  return out;
}

}  // namespace

namespace {

// Opens the archive, unpickles data.pkl and hands its top-level dict to `use`.
template <typename Use>
auto ReadTopDict(const std::string& bytes, const std::string& name, Use&& use) {
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80 && static_cast<uint8_t>(bytes[1]) <= 5) {
    throw CheckpointError(name + " was saved in PyTorch's legacy (pre-1.6, non-zip) format, which torch-attn does not read. "
                          "Re-save it in Python: torch.save(torch.load(path), path)");
  }
  if (bytes.size() < 4 || U32(bytes, 0) != 0x04034b50) {
    throw CheckpointError(name + " is not a PyTorch checkpoint: .pth files written by torch.save are zip archives");
  }
  Zip zip(bytes, name);
  for (const auto& [entry, _] : zip.entries()) {
    if (entry.find("/constants.pkl") != std::string::npos || entry.find("/code/") != std::string::npos) {
      zip.Fail("it is a TorchScript archive (torch.jit.save); save the model's state_dict() with torch.save instead");
    }
  }
  std::string pickle;
  for (const auto& [entry, _] : zip.entries()) {
    auto slash = entry.find('/');
    if (slash != std::string::npos && entry.substr(slash + 1) == "data.pkl") {
      pickle = entry;
      break;
    }
  }
  if (pickle.empty()) zip.Fail("it has no data.pkl entry");
  std::string prefix = pickle.substr(0, pickle.size() - std::string("data.pkl").size());
  // PyTorch's reader requires every record under one top-level folder; so does this one.
  for (const auto& [entry, _] : zip.entries()) {
    if (entry.compare(0, prefix.size(), prefix) != 0) zip.Fail("its entries are under more than one top-level folder ('" + prefix + "', '" + entry + "')");
  }
  if (zip.Has(prefix + "byteorder")) {
    auto [order, size] = zip.Data(prefix + "byteorder");
    if (std::string(order, size) != "little") zip.Fail("it was written on a big-endian machine");
  }
  auto [data, size] = zip.Data(pickle);
  Arena arena;  // outlives `use`, which reads the values
  Unpickler unpickler(zip, prefix, data, size);
  ValuePtr top = unpickler.Run();
  auto* dict = std::get_if<Dict>(&top->v);
  if (dict == nullptr) zip.Fail("its top-level object is not a dict (expected a state dict)");
  return use(*dict, zip);
}

// Checkpoints are read whole; regular files only, up to a size no model torch-attn builds needs
// (ResNet152 with Adam state is under 1 GiB).
constexpr uint64_t kMaxCheckpointBytes = uint64_t{16} << 30;

std::string ReadAll(const std::string& path) { return ReadRegularFileOr<CheckpointError>(path, kMaxCheckpointBytes); }

}  // namespace

NamedTensors ReadPthBytes(const std::string& bytes, const std::string& name) {
  return ReadTopDict(bytes, name, [](const Dict& dict, const Zip& zip) { return ToNamedTensors(dict, zip, true); });
}

std::vector<std::pair<std::string, NamedTensors>> ReadPthSectionsBytes(const std::string& bytes, const std::string& name) {
  return ReadTopDict(bytes, name, [](const Dict& dict, const Zip& zip) {
    std::vector<std::pair<std::string, NamedTensors>> out;
    for (const auto& [key, value] : dict) {
      auto* name = std::get_if<std::string>(&key->v);
      auto* inner = std::get_if<Dict>(&value->v);
      if (name == nullptr || inner == nullptr) zip.Fail("a top-level entry that is not a named dict of tensors");
      out.emplace_back(*name, inner->empty() ? NamedTensors{} : ToNamedTensors(*inner, zip, false));
    }
    return out;
  });
}

std::vector<std::pair<std::string, NamedTensors>> ReadPthSections(const std::string& path) {
  return ReadPthSectionsBytes(ReadAll(path), path);
}

NamedTensors ReadPth(const std::string& path) { return ReadPthBytes(ReadAll(path), path); }

}  // namespace torch_attn::models
