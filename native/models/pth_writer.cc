#include "models/pth_writer.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstring>
#include <unordered_set>

#include "common/errors.h"
#include "models/pth_format.h"

namespace torch_attn::models {

namespace {

// A protocol-2 pickle, written opcode by opcode (no memo: every unpickler accepts that).
class Pickle {
 public:
  Pickle() { op(0x80), op(2); }  // PROTO 2

  void Global(const char* module, const char* name) {
    op('c');
    raw(module), op('\n'), raw(name), op('\n');
  }
  void String(const std::string& s) {  // BINUNICODE
    op('X');
    u32(static_cast<uint32_t>(s.size()));
    raw(s);
  }
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K'), op(static_cast<uint8_t>(v));  // BININT1
    } else if (v >= 0 && v < 65536) {
      op('M'), op(static_cast<uint8_t>(v & 0xff)), op(static_cast<uint8_t>(v >> 8));  // BININT2
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J'), u32(static_cast<uint32_t>(static_cast<int32_t>(v)));  // BININT
    } else {
      op(0x8a), op(8);  // LONG1, 8 bytes little-endian two's complement
      for (int i = 0; i < 8; ++i) op(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
    }
  }
  void Mark() { op('('); }
  void Tuple() { op('t'); }  // everything since the last MARK
  void EmptyTuple() { op(')'); }
  void EmptyDict() { op('}'); }
  void Reduce() { op('R'); }
  void SetItems() { op('u'); }
  void False() { op(0x89); }
  void PersistentId() { op('Q'); }  // BINPERSID
  void Stop() { op('.'); }
  void OrderedDict() { Global("collections", "OrderedDict"), EmptyTuple(), Reduce(); }

  const std::string& bytes() const { return out_; }

 private:
  void op(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void raw(const std::string& s) { out_ += s; }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) op(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::string out_;
};

// Pickles state dicts and collects the storages their tensors reference.
class Writer {
 public:
  // An OrderedDict of `tensors`, as torch.save pickles model.state_dict().
  void StateDict(const NamedTensors& tensors) {
    std::unordered_set<std::string> seen;
    pickle_.OrderedDict();
    pickle_.Mark();
    for (const auto& [name, tensor] : tensors) {
      if (!seen.insert(name).second) throw CheckpointError("the state dict names '" + name + "' twice");
      pickle_.String(name);
      Tensor(tensor, name);
    }
    pickle_.SetItems();
  }

  void Sections(const std::vector<std::pair<std::string, NamedTensors>>& sections) {
    pickle_.EmptyDict();
    pickle_.Mark();
    for (const auto& [name, tensors] : sections) {
      pickle_.String(name);
      StateDict(tensors);
    }
    pickle_.SetItems();
  }

  std::vector<char> Finish() {
    pickle_.Stop();
    std::vector<char> out;
    caffe2::serialize::PyTorchStreamWriter zip([&out](const void* data, size_t size) {
      const char* p = static_cast<const char*>(data);
      out.insert(out.end(), p, p + size);
      return size;
    });
    zip.writeRecord("data.pkl", pickle_.bytes().data(), pickle_.bytes().size());
    const std::string order = "little";
    zip.writeRecord("byteorder", order.data(), order.size());
    for (size_t i = 0; i < storages_.size(); ++i) {
      const auto& s = storages_[i];
      zip.writeRecord("data/" + std::to_string(i), s.data_ptr(), s.numel() * s.element_size());
    }
    zip.writeEndOfFile();
    return out;
  }

 private:
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
  void Tensor(const at::Tensor& tensor, const std::string& name) {
    const char* storage = StorageName(tensor.scalar_type());
    if (storage == nullptr) {
      throw CheckpointError("'" + name + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) + ", which a .pth file cannot hold");
    }
    // Written out by Finish() on this thread, before anything can change the weights.
    at::Tensor data = tensor.detach().to(at::kCPU).contiguous();
    const std::string key = std::to_string(storages_.size());
    storages_.push_back(data);
    pickle_.Global("torch._utils", "_rebuild_tensor_v2");
    pickle_.Mark();
    pickle_.Mark();  // the persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel)
    pickle_.String("storage");
    pickle_.Global("torch", storage);
    pickle_.String(key);
    pickle_.String("cpu");
    pickle_.Int(data.numel());
    pickle_.Tuple();
    pickle_.PersistentId();
    pickle_.Int(0);  // storage offset
    pickle_.Mark();
    for (int64_t d : data.sizes()) pickle_.Int(d);
    pickle_.Tuple();
    pickle_.Mark();
    for (int64_t s : data.strides()) pickle_.Int(s);
    pickle_.Tuple();
    pickle_.False();        // requires_grad
    pickle_.OrderedDict();  // backward hooks
    pickle_.Tuple();
    pickle_.Reduce();
  }

  Pickle pickle_;
  std::vector<at::Tensor> storages_;
};

}  // namespace

std::vector<char> EncodePth(const NamedTensors& tensors) {
  Writer w;
  w.StateDict(tensors);
  return w.Finish();
}

std::vector<char> EncodePthSections(const std::vector<std::pair<std::string, NamedTensors>>& sections) {
  Writer w;
  w.Sections(sections);
  return w.Finish();
}

}  // namespace torch_attn::models
