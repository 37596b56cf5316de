// The JS-visible data objects: Dataset (a source plus its transform), DataLoader and the
// per-epoch BatchStream. Thin: parsing of JS values here, all work in data/*.cc.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/claim.h"
#include "common/js_errors.h"
#include "common/no_dangling.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace torch_attn::data {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap>, public GuardedMethods<DatasetWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x5d1a7a5e70a1b2c3ULL, 0x0d47a5e7d47a5e70ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  TA_NO_DANGLING static DatasetWrap& FromValue(const Napi::Value& value, const std::string& what);
  static Napi::Object New(Napi::Env env, TransformedDataset data);

  explicit DatasetWrap(const Napi::CallbackInfo& info);
  const TransformedDataset& data() const { return data_; }

 private:
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value WithTransform(const Napi::CallbackInfo& info);
  Napi::Value Get(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);

  TransformedDataset data_;
};

class LoaderWrap : public Napi::ObjectWrap<LoaderWrap>, public GuardedMethods<LoaderWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x10ad3e5b7c9d1e2fULL, 0x2b4d6f8091a3c5e7ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  TA_NO_DANGLING static LoaderWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit LoaderWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<Loader>& loader() const { return loader_; }

 private:
  Napi::Value BatchCount(const Napi::CallbackInfo& info);
  Napi::Value Epoch(const Napi::CallbackInfo& info);

  std::shared_ptr<Loader> loader_;
};

class StreamWrap : public Napi::ObjectWrap<StreamWrap>, public GuardedMethods<StreamWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x57e4a3b2c1d0e9f8ULL, 0x0f1e2d3c4b5a6978ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  explicit StreamWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Next(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<BatchStream> stream_;
  std::shared_ptr<JobSlot> slot_ = std::make_shared<JobSlot>();
};

// Parses a JS transform list ([{ op, ...fields }]).
std::vector<TransformSpec> ReadTransformSpecs(const Napi::Value& value, const std::string& what);
LoaderOptions ReadLoaderOptions(const Napi::Value& value);

}  // namespace torch_attn::data
