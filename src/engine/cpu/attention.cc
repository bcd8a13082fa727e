#include "common.h"
namespace lmf {
void registerAttention(Napi::Env, Napi::Object) {}
}
